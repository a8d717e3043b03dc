"""``mer predict`` as a newcomer uses it: terminal output, segments, embeddings, parts of files,
standard input, -o, scales; the Python API the field expects (arrays, to_dict, many files); and
``mer export`` without PyTorch's own warnings."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mer
from mer import synth
from mer.cli.predict import Writer, natural_key, shorten

REPO = Path(__file__).resolve().parents[1]


def _mer(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, input=stdin, timeout=300,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture(scope="module")
def music(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("music")
    for i in (2, 10, 3, 1):
        sf.write(d / f"track{i}.wav", synth.clip(0.5, 0.4, 4.0, 16000, seed=i), 16000)
    return d


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("long") / "long.wav"
    y = np.concatenate([synth.clip(0.7, 0.7, 40.0, 22050, seed=1), synth.clip(-0.7, -0.7, 40.0, 22050, seed=2)])
    sf.write(p, y.astype(np.float32), 22050, subtype="FLOAT")
    return p


def test_natural_order_and_paths_cut_at_folders():
    names = [Path(f"a/track{i}.wav") for i in (10, 2, 3, 1)]
    assert [p.name for p in sorted(names, key=natural_key)] == ["track1.wav", "track2.wav", "track3.wav",
                                                                "track10.wav"]
    assert shorten("/very/long/folder/name/album/song.mp3", 20) == "…/album/song.mp3"
    assert shorten("/music/song.mp3", 20) == "/music/song.mp3"  # whole when it fits
    cut = shorten("/music/" + "x" * 50 + ".mp3", 20)  # a name too long alone: cut from the left too
    assert cut.startswith("…x") and cut.endswith("x.mp3") and len(cut) == 20


@pytest.fixture(scope="module")
def pred(music):
    """One real prediction of the default model (tags, probabilities, two segments)."""
    return mer.predict(music / "track1.wav", segments=2)


@pytest.mark.parametrize("columns", [80, 100, 120, 200])
def test_table_fits_the_terminal_with_one_layout_for_every_row(pred, columns):
    long = "/" + "/".join(["a-rather-long-folder-name"] * 6) + "/song.mp3"
    lines: list[str] = []
    writer = Writer("table", "canonical", False, lines.append, columns=columns, longest=len(long))
    writer.add(pred, long)
    writer.add(pred, "song.mp3")
    writer.end()
    assert lines and all(len(line) <= columns for line in lines), [len(line) for line in lines]
    header, files = lines[0], [line for line in lines[1:] if not line.startswith(" ")]
    assert pred.moods  # the default names mood words: the table's last column shows them (tags stay in json)
    assert header.split() == ["file", "valence", "arousal", "quadrant"] + (["moods"] if columns >= 100 else [])
    assert files[0].startswith("…/") and files[0].split()[0].endswith("/song.mp3")  # cut from the left
    assert files[1].split()[0] == "song.mp3"  # a short name is left whole
    at = header.index("quadrant")  # the same column on every row, segments' rows too
    assert all(line[at:at + 2] == pred.quadrant for line in lines[1:])
    if "moods" in header:
        assert files[0][header.index("moods"):].startswith(pred.top_moods(1)[0])


def test_table_width_follows_COLUMNS_on_the_command_line(tmp_path):
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 3)
    deep.mkdir(parents=True)
    sf.write(deep / "song.wav", synth.clip(0.5, 0.4, 3.0, 16000, seed=1), 16000)
    res = subprocess.run([sys.executable, "-m", "mer", "predict", str(tmp_path), "-q"], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80"})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines) and lines[1].startswith("…/a-rather-long-folder-name/song.wav")


def test_json_keeps_number_lists_on_one_line_and_reads_back_the_same(pred):
    lines: list[str] = []
    writer = Writer("json", "canonical", True, lines.append)
    writer.add(pred, "a.wav")
    writer.add(pred, "b.wav")
    writer.end()
    text = "\n".join(lines)
    expected = [{**pred.on_scale("canonical"), "path": name} for name in ("a.wav", "b.wav")]
    assert json.loads(text) == json.loads(json.dumps(expected))
    curve = [line for line in text.splitlines() if '"valence_curve"' in line]
    assert len(curve) == 2 and curve[0].strip() == '"valence_curve": ' + json.dumps(expected[0]["valence_curve"]) + ","
    assert '\n  "valence": ' in text and '\n      "start": ' in text  # keys stay one per line, nested too


@pytest.mark.parametrize("fmt, printed", [("table", []), ("csv", []), ("jsonl", []), ("json", ["[]"])])
def test_nothing_predicted_prints_no_header(fmt, printed):
    lines: list[str] = []
    writer = Writer(fmt, "canonical", False, lines.append, columns=80)
    writer.end()
    assert lines == printed


def test_table_rows_go_through_the_progress_bar_in_a_terminal(music):
    """In a pseudo-terminal every row starts on a line of its own, never after the bar."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mer", "predict", str(music), "--workers", "1"], stdout=slave,
                            stderr=slave, env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    out = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, out
    order = [out.index(f"track{i}.wav") for i in (1, 2, 3, 10)]
    assert order == sorted(order), "natural order"
    for i in (1, 2, 3, 10):
        k = out.index(str(music / f"track{i}.wav")[:30])
        assert out[k - 1] in "\r\n", repr(out[max(0, k - 40):k + 10])


def test_segments_scales_parts_stdin_and_output_file(long_wav, tmp_path):
    res = _mer("predict", str(long_wav), "--segments", "20", "--format", "csv", "--scale", "0-1")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout.decode())))
    assert [(float(r["start"]), float(r["end"])) for r in rows] == [(0, 20), (20, 40), (40, 60), (60, 80)]
    for r in rows:
        assert 0 <= float(r["valence"]) <= 1 and abs(sum(float(r[f"p_q{i}"]) for i in range(1, 5)) - 1) < 1e-3
        assert r["model"] == "default" and len(r["weights_sha1"]) == 40  # every row names what made it
    # a part of the file, from standard input, to a file written atomically
    out = tmp_path / "part.jsonl"
    out.write_text("previous results\n")
    res = _mer("predict", "-", "--offset", "10", "--duration", "20", "--format", "jsonl", "-o", str(out),
               stdin=long_wav.read_bytes())
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert doc["path"] == "-" and abs(doc["duration"] - 20.0) < 0.05 and len(doc["times"]) == 40
    assert doc["times"][0] == 10.5 and doc["times"][-1] == 30.0  # the file's clock, not the part's
    # a failing run leaves the previous output as it was
    bad = _mer("predict", str(long_wav), "--model", "no_such_model", "-o", str(out))
    assert bad.returncode == 1 and json.loads(out.read_text())["path"] == "-"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    empty = _mer("predict", "-", stdin=b"")
    assert empty.returncode == 1 and b"standard input" in empty.stderr


def test_embeddings_file(music, tmp_path):
    res = _mer("predict", str(music), "--embeddings", str(tmp_path / "e.npz"), "--format", "csv", "-q")
    assert res.returncode == 0, res.stderr
    d = np.load(tmp_path / "e.npz")
    assert d["embedding"].shape == (4, 200) and d["step_offsets"][-1] == len(d["step_embeddings"])
    assert [Path(p).name for p in d["paths"]] == ["track1.wav", "track2.wav", "track3.wav", "track10.wav"]
    first = d["step_embeddings"][d["step_offsets"][0]:d["step_offsets"][1]]
    assert np.allclose(first.mean(axis=0), d["embedding"][0], atol=1e-5)
    assert str(d["model"]) == "default" and len(str(d["weights_sha1"])) == 40


def test_python_api_arrays_parts_segments_embeddings_and_many(long_wav, music, tmp_path):
    y, sr = sf.read(long_wav, dtype="float32")
    from_file = mer.predict(long_wav)
    from_array = mer.predict(y, sr=sr)
    assert abs(from_file.valence - from_array.valence) < 2e-3 and from_file.quadrant == from_array.quadrant
    part = mer.predict(long_wav, offset=10, duration=20)
    cropped = mer.predict(y[10 * sr:30 * sr], sr=sr)
    assert abs(part.valence - cropped.valence) < 2e-3 and abs(part.duration - 20) < 0.05
    assert part.times[0] == 10.5 and np.allclose(part.curve, cropped.curve, atol=2e-3)
    parts = mer.predict(long_wav, offset=20, duration=20, segments=10).segments
    assert [(s.start, s.end) for s in parts] == [(20, 30), (30, 40)]  # segment bounds in file time too
    whole = mer.predict(long_wav, segments=1000, embeddings=True)
    assert len(whole.segments) == 1 and whole.segments[0].valence == whole.valence
    assert whole.step_embeddings.shape == (len(whole.times), 200)
    d = whole.to_dict(embeddings=True)
    assert json.loads(json.dumps(d))["segments"][0]["quadrant"] == whole.quadrant and len(d["embedding"]) == 200
    bad = tmp_path / "bad.mp3"
    bad.write_text("not audio")
    paths = sorted(music.glob("*.wav")) + [bad]
    results = list(mer.Predictor().predict_many(paths, workers=2))
    assert [Path(r.path).name for r in results[:-1]] == [p.name for p in paths[:-1]]
    assert isinstance(results[-1], mer.MERError) and "bad.mp3" in str(results[-1])
    with pytest.raises(mer.ConfigError, match="sample rate"):
        mer.predict(y)


def test_export_shows_mers_warnings_and_hides_the_exporters(tmp_path, monkeypatch, capsys):
    """What PyTorch's exporter warns about itself is not labelled (nor printed) as mer's."""
    import mer.infer.export
    import mer.models.checkpoint
    from mer.cli import main

    def export_onnx(model, meta, out, seconds):  # stands in for torch.onnx.export's chatter
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning)
        warnings.warn("torch.onnx.dynamo_export is deprecated", DeprecationWarning)
        warnings.warn("the window is short", mer.MERWarning)
        Path(out).write_bytes(b"onnx")
        return Path(out)

    monkeypatch.setattr(mer.infer.export, "export_onnx", export_onnx)
    monkeypatch.setattr(mer.models.checkpoint, "load_checkpoint", lambda stem, **kw: (None, {}))
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() installs its one-line form
    assert main(["export", "--onnx", str(tmp_path / "m.onnx")]) == 0
    err = capsys.readouterr().err
    assert "mer: warning: the window is short" in err
    assert "deprecated" not in err, err


def test_mood_words_in_json_and_in_csv_columns_on_request(music, tmp_path):
    """JSON carries every mood word's probability, most probable first; CSV adds one column per
    word with --mood-columns (and none without, so the schema's columns stay as they were)."""
    import csv as csv_module
    import json

    from mer.bundle import Bundle

    words = Bundle.resolve("default").mood_words
    assert len(words) >= 40
    res = subprocess.run([sys.executable, "-m", "mer", "predict", str(music / "track1.wav"), "--format", "json",
                          "--segments", "2"], capture_output=True, text=True, timeout=300, cwd=REPO)
    (d,) = json.loads(res.stdout)
    assert set(d["moods"]) == set(words) and all(0 <= p <= 1 for p in d["moods"].values())
    assert list(d["moods"].values()) == sorted(d["moods"].values(), reverse=True)
    assert all(set(s["moods"]) == set(words) for s in d["segments"])  # --segments: each its own words
    plain = tmp_path / "plain.csv"
    wide = tmp_path / "wide.csv"
    for out, extra in ((plain, []), (wide, ["--mood-columns"])):
        res = subprocess.run([sys.executable, "-m", "mer", "predict", str(music / "track1.wav"), "--format", "csv",
                              "-o", str(out), *extra], capture_output=True, text=True, timeout=300, cwd=REPO)
        assert res.returncode == 0, res.stderr
    (row,) = csv_module.DictReader(plain.open())
    assert not any(k.startswith("mood_") for k in row)
    (row,) = csv_module.DictReader(wide.open())
    assert float(row["mood_calm_peaceful"]) == d["moods"]["calm/peaceful"]
    assert sum(k.startswith("mood_") for k in row) == len(words)
    bad = subprocess.run([sys.executable, "-m", "mer", "predict", str(music / "track1.wav"), "--model", "fast",
                          "--mood-columns"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert bad.returncode == 1 and "--mood-columns needs a model with mood words" in bad.stderr
