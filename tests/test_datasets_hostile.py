"""Hostile releases for MERGE, RAVDESS and AMG1608 (the probe's findings), on the small fake
releases of ``test_datasets_more``:

- MERGE split files whose parts share songs are refused where a split is used (``--split``)
  and reported by ``validate``, naming the file and some of the shared ids;
- RAVDESS file names with a field outside the naming convention (actor 99, intensity 05...)
  or naming a recording the release does not have are no tracks, and ``validate`` names them;
  ``validate`` reports track files that are empty, text or cut short;
- an AMG1608 ``.mat`` that is text, empty or garbage is a one-line :class:`DatasetError`
  naming the file and where to re-download it, never a traceback from inside scipy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_datasets_more import TINY, amg1608_release, merge_release, ravdess_release

from mer import DatasetError
from mer.cli import main
from mer.datasets import load_dataset

SPLIT = "tvt_70_15_15"


def _split_file(root: Path, part: str, name: str = SPLIT) -> Path:
    return root / "MERGE_Audio_Complete" / "tvt_dataframes" / name / f"{name}_{part}_audio_complete.csv"


def _copy_rows(root: Path, src: str, dst: str, n: int = 2) -> list[str]:
    """Append the first ``n`` songs of part ``src`` to part ``dst``; return their ids."""
    rows = _split_file(root, src).read_text().splitlines()[1:1 + n]
    path = _split_file(root, dst)
    path.write_text(path.read_text() + "".join(r + "\n" for r in rows))
    return [r.split(",")[0] for r in rows]


# -- MERGE: overlapping published splits ---------------------------------------------------

@pytest.mark.parametrize("src,dst", [("train", "test"), ("validate", "test"), ("train", "validate")])
def test_merge_split_with_overlapping_parts_is_refused_and_reported(tmp_path, src, dst):
    root = merge_release(tmp_path / "merge")
    shared = _copy_rows(root, src, dst)
    ds = load_dataset("merge", root)
    with pytest.raises(DatasetError) as err:
        ds.named_split(SPLIT)
    msg = str(err.value)
    assert msg.startswith(str(_split_file(root, dst))) and "\n" not in msg
    assert _split_file(root, src).name in msg and all(repr(s) in msg for s in shared) and "re-download" in msg
    found = [(p.kind, Path(p.path).name) for p in ds.validate().problems]
    assert found == [("split_overlap", _split_file(root, dst).name)]
    ds.named_split("tvt_40_30_30")  # the other split is untouched and still usable


def test_merge_overlap_stops_train_and_fails_validate_on_the_cli(tmp_path, capsys):
    root = merge_release(tmp_path / "merge")
    shared = _copy_rows(root, "train", "test", n=5)
    assert main(["datasets", "validate", "merge", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "problems           : none" not in out and "1 split_overlap" in out
    assert "tvt_70_15_15_test_audio_complete.csv: 5 song(s) also in tvt_70_15_15_train_audio_complete.csv" in out
    assert all(repr(s) in out for s in sorted(shared)[:3]) and "..." in out  # a few ids, not all
    assert main(["datasets", "validate", "merge", "--root", str(root), "--strict"]) == 1
    capsys.readouterr()
    run = tmp_path / "run"
    assert main(["train", "--dataset", "merge", "--root", str(root), *TINY, "--split", SPLIT, "--out", str(run),
                 "--cache-dir", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("mer: error: ") and "test_audio_complete.csv" in err
    assert not (run / "summary.json").exists()


def test_merge_validate_reports_split_songs_missing_from_the_metadata_and_missing_parts(tmp_path):
    root = merge_release(tmp_path / "merge")
    test = _split_file(root, "test")
    test.write_text(test.read_text() + "A999,Q1\n")
    _split_file(root, "validate", "tvt_40_30_30").unlink()
    found = sorted((p.kind, Path(p.path).name) for p in load_dataset("merge", root).validate().problems)
    assert found == [("missing_file", "tvt_40_30_30_validate_audio_complete.csv"),
                     ("split_unknown_songs", "tvt_70_15_15_test_audio_complete.csv")]
    with pytest.raises(DatasetError, match="A999"):
        load_dataset("merge", root).named_split(SPLIT)


# -- RAVDESS: names outside the convention, files that are not audio -------------------------

BAD_NAMES = {
    "03-02-03-01-01-01-99": "actor 99",
    "03-02-03-05-01-01-01": "intensity 05",
    "03-02-03-01-03-01-01": "statement 03",
    "03-02-03-01-01-00-01": "repetition 00",
    "03-02-09-01-01-01-01": "emotion 09",
    "03-03-03-01-01-01-01": "vocal channel 03",
    "04-02-03-01-01-01-01": "modality 04",
    "03-02-01-02-01-01-01": "no strong intensity",  # neutral, strong: not in the release
    "03-02-08-01-01-01-01": "not sung",  # surprised is speech only
    "03-02-03-01-01-01-18": "no song files for actor 18",
}


@pytest.mark.parametrize("stem", list(BAD_NAMES))
def test_ravdess_names_outside_the_convention_are_no_tracks(tmp_path, stem):
    root = ravdess_release(tmp_path / "ravdess")
    shutil.copy(root / "Actor_01" / "03-02-03-01-01-01-01.wav", root / "Actor_01" / f"{stem}.wav")
    ds = load_dataset("ravdess", root, speech=True, neutral="centre",
                      quadrants="disgust=Q2,surprised=Q1")  # every emotion a track, were the name valid
    assert stem not in ds.index and len(ds) == 21 + 4  # the fixture's own song, speech and neutral tracks
    bad = [p for p in ds.validate().problems if p.kind == "bad_name"]
    assert len(bad) == 1 and bad[0].path.endswith(f"{stem}.wav") and f"{stem}.wav" in bad[0].message
    assert BAD_NAMES[stem] in bad[0].message and "rename" in bad[0].message


def test_ravdess_names_at_the_edges_of_the_convention_are_tracks(tmp_path):
    root = ravdess_release(tmp_path / "ravdess", actors=(24,))
    for stem in ("03-02-06-02-02-02-24", "03-01-07-02-02-02-24", "03-01-08-01-01-02-24"):
        shutil.copy(root / "Actor_24" / "03-02-03-01-01-01-24.wav", root / "Actor_24" / f"{stem}.wav")
    ds = load_dataset("ravdess", root, speech=True, quadrants="disgust=Q2,surprised=Q1")
    assert {"03-02-06-02-02-02-24", "03-01-07-02-02-02-24", "03-01-08-01-01-02-24"} <= set(ds.index)
    assert not [p for p in ds.validate().problems if p.kind == "bad_name"]


def test_ravdess_validate_reports_empty_text_and_truncated_wavs(tmp_path, capsys):
    root = ravdess_release(tmp_path / "ravdess")
    empty, text = root / "Actor_01" / "03-02-03-01-01-01-01.wav", root / "Actor_02" / "03-02-04-01-01-01-02.wav"
    cut, other = root / "Actor_03" / "03-02-05-01-01-01-03.wav", root / "Actor_04" / "03-02-06-01-01-01-04.wav"
    empty.write_bytes(b"")
    text.write_text("this is not audio\n")
    cut.write_bytes(cut.read_bytes()[:2000])
    other.write_bytes(b"\x00\x01\x02\x03" * 100)
    rep = load_dataset("ravdess", root).validate()
    bad = {Path(p.path).name: p.message for p in rep.problems if p.kind == "bad_audio"}
    assert set(bad) == {empty.name, text.name, cut.name, other.name} and rep.n_audio == 20 - 4
    assert "empty (0 bytes)" in bad[empty.name] and "text" in bad[text.name] and "truncated" in bad[cut.name]
    assert "not a WAV file" in bad[other.name] and all("re-download" in m for m in bad.values())
    assert main(["datasets", "validate", "ravdess", "--root", str(root), "--show", "20"]) == 0
    out = capsys.readouterr().out
    assert "4 bad_audio" in out and f"{empty}: empty (0 bytes)" in out


# -- AMG1608: .mat files that are not MATLAB files -----------------------------------------

@pytest.mark.parametrize("which", ["AMG1608.mat", "1608_song_id.mat"])
@pytest.mark.parametrize("content", [b"", b"song_label = [1 2 3]\n", b"\x89PNG\r\n\x1a\n" + b"\xff" * 300,
                                     "truncated"], ids=["empty", "text", "binary", "truncated"])
def test_amg1608_mat_that_is_not_a_matlab_file_is_a_one_line_error(tmp_path, capsys, which, content):
    root, _ = amg1608_release(tmp_path / "amg", audio=False)
    mat = root / "AMG1608_release" / which
    data = mat.read_bytes()
    mat.write_bytes(data[:len(data) // 2] if content == "truncated" else content)
    with pytest.raises(DatasetError) as err:
        load_dataset("amg1608", root).track_ids
    msg = str(err.value)
    assert msg.startswith(f"{mat}: ") and "\n" not in msg and "re-download" in msg and "amg1608.blogspot.com" in msg
    assert main(["datasets", "validate", "amg1608", "--root", str(root)]) == 1
    cap = capsys.readouterr()
    assert cap.err.strip().count("\n") == 0 and cap.err.startswith(f"mer: error: {mat}: ")
    assert "internal error" not in cap.err and "Traceback" not in cap.err
