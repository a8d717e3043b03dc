"""mer predict / mer.predict: the bundled model, formats, plots, bad files, long audio, ONNX."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mer import synth
from mer.errors import MERWarning
from mer.grid import n_steps
from mer.bundle import Bundle, bundled_models
from mer.infer import Predictor, predict
from mer.scales import quadrant


def _mer(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, text=True, timeout=timeout)


def test_bundled_default_predicts_a_file(wav_file):
    assert "default" in bundled_models()
    p = predict(wav_file)
    assert -1.5 < p.valence < 1.5 and -1.5 < p.arousal < 1.5
    assert p.quadrant == quadrant(p.valence, p.arousal).name and p.quadrant_words
    assert p.curve.shape == (10, 2) and np.isfinite(p.curve).all()
    assert p.times.tolist() == [0.5 * (i + 1) for i in range(10)]
    assert abs(p.duration - 5.0) < 0.05
    d = p.on_scale("1-9")
    assert d["valence"] == pytest.approx(5 + 4 * p.valence, abs=1e-3) and d["scale"] == "1-9"


def test_default_model_on_real_music(shared):
    """Clear cases land in their quadrant, and the 2 Hz curve (trained toward each clip's
    label at every step) agrees with the static output on average."""
    root = shared("4q-dev")
    static, means = [], []
    for q in ("Q1", "Q2", "Q3", "Q4"):
        for f in sorted((root / q).glob("*.mp3"))[:2]:
            p = predict(f)
            static.append([p.valence, p.arousal])
            means.append(p.curve.mean(axis=0))
    static, means = np.array(static), np.array(means)
    assert np.abs(static - means).max() < 0.2
    for d in (0, 1):
        assert np.corrcoef(static[:, d], means[:, d])[0, 1] > 0.9
    assert predict(root / "Q2" / "MT0000216849.mp3").quadrant == "Q2"
    tags = predict(root / "Q2" / "MT0000216849.mp3").tags
    assert "metal" in tags or "punk" in tags


@pytest.mark.slow
def test_formats_and_plots(tmp_path, wav_file, mp3_file):
    folder = tmp_path / "music"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "a.wav", synth.clip(0.6, 0.6, seconds=4.0, sr=16000), 16000)
    sf.write(folder / "sub" / "b.flac", synth.clip(-0.6, -0.6, seconds=4.0, sr=44100), 44100)
    (folder / "sub" / "c.mp3").write_bytes(mp3_file.read_bytes())
    res = _mer("predict", str(folder), "--format", "csv", "--plot-dir", str(tmp_path / "plots"), "--workers", "2")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [Path(r["path"]).name for r in rows] == ["a.wav", "b.flac", "c.mp3"]
    for r in rows:
        assert r["quadrant"] == quadrant(float(r["valence"]), float(r["arousal"])).name
        # the default's quadrant probabilities: they sum to 1, the quadrant is the most probable
        probs = [float(r[f"p_q{i}"]) for i in range(1, 5)]
        assert abs(sum(probs) - 1) < 1e-3 and r["quadrant"] == f"Q{int(np.argmax(probs)) + 1}"
        assert float(r["confidence"]) == max(probs) and r["model"] == "default" and len(r["weights_sha1"]) == 40
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert [n.rsplit("-", 1)[0] for n in names] == ["a", "b", "c"] and all(n.endswith(".png") for n in names)
    # another folder with the same file names does not overwrite these plots
    other = tmp_path / "other"
    other.mkdir()
    sf.write(other / "a.wav", synth.clip(-0.6, 0.6, seconds=4.0, sr=16000), 16000)
    assert _mer("predict", str(other), "--plot-dir", str(tmp_path / "plots"), "-q").returncode == 0
    assert len(list((tmp_path / "plots").iterdir())) == 4
    res = _mer("predict", str(wav_file), "--format", "json", "--scale", "1-9", "--plot", str(tmp_path / "one.png"))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert len(doc) == 1 and 1 <= doc[0]["valence"] <= 9 and len(doc[0]["valence_curve"]) == 10
    assert (tmp_path / "one.png").read_bytes()[:4] == b"\x89PNG"
    res = _mer("predict", str(wav_file), str(mp3_file), "--format", "jsonl", "--plot", str(tmp_path / "x.png"))
    assert res.returncode == 1 and "--plot-dir" in res.stderr
    res = _mer("predict", str(wav_file), "--format", "jsonl")
    assert json.loads(res.stdout.splitlines()[0])["quadrant"] in ("Q1", "Q2", "Q3", "Q4")
    res = _mer("predict", str(wav_file))
    assert res.returncode == 0 and "quadrant" in res.stdout.splitlines()[0]


def test_bad_files_in_a_batch_never_stop_it(tmp_path, bad_corpus, wav_file):
    odd = tmp_path / "odd"
    odd.mkdir()
    sf.write(odd / "8k_mono.wav", synth.clip(0.2, 0.2, seconds=3.0, sr=8000), 8000)
    six = np.stack([synth.clip(0.1, 0.1, seconds=2.0, sr=96000, seed=i) for i in range(6)], axis=1)
    sf.write(odd / "96k_6ch.wav", six, 96000)
    sf.write(odd / "silence.wav", np.zeros(16000, dtype=np.float32), 16000)
    bad = [str(bad_corpus[k]) for k in ("empty", "text", "truncated", "header_only", "missing")]
    res = _mer("predict", *bad, str(odd), str(wav_file), "--format", "csv", "--workers", "2")
    assert res.returncode == 1
    names = [Path(r["path"]).name for r in csv.DictReader(io.StringIO(res.stdout))]
    assert names == ["8k_mono.wav", "96k_6ch.wav", "silence.wav", "clip.wav"]
    errors = [line for line in res.stderr.splitlines() if line.startswith("mer: error:")]
    assert len(errors) == 5 and "Traceback" not in res.stderr
    for k in ("empty.mp3", "text.mp3", "truncated.mp3", "header_only.wav", "missing.mp3"):
        assert sum(k in e for e in errors) == 1, k
    assert "silent" in res.stderr and "5 of 9 input(s) failed" in res.stderr


def test_bad_model_fails_once_before_reading_files(wav_file):
    res = _mer("predict", str(wav_file), "--model", "no_such_model")
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "not found" in res.stderr
    res = _mer("predict", str(wav_file), "--model", "crnn")
    assert res.returncode == 1 and "untrained architecture" in res.stderr


@pytest.mark.slow
def test_long_audio_is_processed_in_chunks(tmp_path):
    """A 100 s file goes through the chunked path: full-length curve, sane static value."""
    y = np.concatenate([synth.clip(0.7, 0.7, 50.0, 16000, seed=1), synth.clip(-0.7, -0.7, 50.0, 16000, seed=2)])
    path = tmp_path / "long.wav"
    sf.write(path, y, 16000)
    pred = Predictor(backend="torch")
    x = pred.features(path)
    out = pred.inference(x)
    assert out["dynamic"].shape == (n_steps(x.shape[-1], pred.feature), 2) == (200, 2)
    with torch.no_grad():
        whole = {k: v[0].numpy() for k, v in pred.engine.model(torch.from_numpy(x)[None]).items()}
    # with 4 s of context around every 32 s chunk, a model whose receptive field is shorter
    # than that (the default: 3 s windows) gives what one pass over the whole file gives
    assert np.abs(out["static"] - whole["static"]).max() < 1e-3
    assert np.abs(out["dynamic"] - whole["dynamic"]).max() < 1e-3


@pytest.mark.slow
def test_onnx_export_matches_pytorch_on_real_audio(tmp_path, shared):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import onnxruntime as ort

    from mer.infer.export import export_onnx
    from mer.models.checkpoint import load_checkpoint

    clip = sorted(shared("4q-dev").glob("Q1/*.mp3"))[0]
    bundle = Bundle.resolve("default")
    model, _ = load_checkpoint(bundle)
    path = export_onnx(model, bundle, tmp_path / "default.onnx", seconds=30.0)
    side = json.loads(path.with_suffix(".json").read_text())
    frames = side["input_shape"][-1]
    x = Predictor(backend="torch").features(clip)[None, ..., :frames]
    assert x.shape[-1] == frames
    static, dynamic = ort.InferenceSession(str(path)).run(None, {"features": x})
    with torch.no_grad():
        ref = model(torch.from_numpy(x))
    assert np.abs(static - ref["static"].numpy()).max() < 1e-4
    assert np.abs(dynamic - ref["dynamic"].numpy()).max() < 1e-4


@pytest.mark.slow
def test_default_runs_on_onnx_runtime_and_agrees_with_pytorch(tmp_path, shared):
    """The bundled default's committed ONNX graphs are its weights (same SHA-1) and give what
    PyTorch gives on real music, a chunked long file and a file shorter than one step."""
    pytest.importorskip("onnxruntime")
    fast, slow = Predictor(), Predictor(backend="torch")
    assert fast.engine.kind == "onnx" and slow.engine.kind == "torch"
    root = shared("4q-dev")
    clips = [sorted((root / q).glob("*.mp3"))[0] for q in ("Q1", "Q2", "Q3", "Q4")]
    long = tmp_path / "long.wav"
    sf.write(long, np.concatenate([synth.clip(0.5, 0.5, 45.0, 16000, seed=3), synth.clip(-0.5, 0.5, 45.0, 16000)]),
             16000)
    short = tmp_path / "short.wav"
    sf.write(short, synth.clip(0.5, 0.5, 0.3, 16000), 16000)
    for f in [*clips, long, short]:
        a, b = fast(f), slow(f)
        assert abs(a.valence - b.valence) <= 2e-4 and abs(a.arousal - b.arousal) <= 2e-4, f
        assert a.curve.shape == b.curve.shape and np.abs(a.curve - b.curve).max() <= 2e-4, f
        assert list(a.tags) == list(b.tags), f
    assert fast(short).curve.shape == (1, 2)


def test_stale_onnx_graphs_fall_back_to_pytorch(tmp_path, wav_file):
    pytest.importorskip("onnxruntime")
    from mer import ConfigError, MERWarning, ModelError
    from mer.bundle import PRETRAINED

    for suffix in (".json", ".safetensors", ".embed.onnx", ".head.onnx"):
        (tmp_path / f"m{suffix}").write_bytes((PRETRAINED / f"default{suffix}").read_bytes())
    assert Predictor(tmp_path / "m").engine.kind == "onnx"
    raw = bytearray((tmp_path / "m.safetensors").read_bytes())
    raw[-1] ^= 1  # other weights than the graphs were exported from
    (tmp_path / "m.safetensors").write_bytes(bytes(raw))
    with pytest.warns(MERWarning, match="exported from other weights"):
        assert Predictor(tmp_path / "m").engine.kind == "torch"
    with pytest.raises(ModelError, match="other weights"):
        Predictor(tmp_path / "m", backend="onnx")
    with pytest.raises(ConfigError, match="CPU only"):
        Predictor(tmp_path / "m", device="cuda", backend="onnx")
    (tmp_path / "m.head.onnx").unlink()
    assert Predictor(tmp_path / "m").engine.kind == "torch"
    with pytest.raises(ModelError, match="no ONNX graphs"):
        Predictor(tmp_path / "m", backend="onnx")


def test_mer_predict_does_not_import_torch(wav_file):
    """The cold start of `mer predict` with the default model: onnxruntime, never torch (~2.5 s)."""
    code = ("import sys; from mer.cli import main; rc = main(['predict', sys.argv[1], '--format', 'csv']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, str(wav_file)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0].startswith("path,valence,arousal,quadrant")


def test_top_level_predict_returns_a_typed_prediction(tmp_path):
    """The documented API: ``mer.predict(path)`` -> ``mer.Prediction``."""
    import mer

    path = tmp_path / "song.wav"
    sf.write(path, synth.clip(0.5, 0.5, seconds=4.0, sr=22050, seed=5), 22050)
    pred = mer.predict(path, model="fast")
    assert isinstance(pred, mer.Prediction)
    assert pred.quadrant == quadrant(pred.valence, pred.arousal).name and len(pred.curve) == 8


def test_outputs_stay_on_the_canonical_scale(shared):
    """Linear heads can overshoot [-1, 1] (the default's 2 Hz valence reached 1.1 on this
    chorus); every output is kept on the scale, before the quadrant agreement."""
    from mer.infer.inference import agree

    out = agree({"static": np.array([1.3, -2.0], np.float32), "dynamic": np.array([[1.2, 0.1], [-1.5, 0.9]])})
    np.testing.assert_array_equal(out["static"], [1.0, -1.0])
    np.testing.assert_array_equal(out["dynamic"], np.array([[1.0, 0.1], [-1.0, 0.9]], np.float32))
    p = predict(shared("pmemo-samples", "108.mp3"))
    curve = np.asarray(p.curve)
    assert np.abs(curve).max() <= 1.0 and curve[:, 0].max() == 1.0  # it reaches the edge: the clip acted


def test_feature_blocks_equal_the_whole_file_in_one_and_two_passes(tmp_path, monkeypatch):
    """The blocks of a loudness-normalised model concatenate to ``features_from_file``'s result,
    whether the file is short (raw blocks kept for one pass) or long (decoded twice), and the
    progress reaches 1 without going back."""
    from mer import features

    y = synth.clip(0.3, -0.4, 95.0, 22050, seed=3).astype(np.float32)
    path = tmp_path / "a.wav"
    sf.write(path, y, 22050, subtype="FLOAT")
    cfg = features.FeatureConfig(level=0.139)
    whole = features.features_from_file(path, cfg)
    for one_pass in (600.0, 10.0):
        monkeypatch.setattr(features, "ONE_PASS_SECONDS", one_pass)
        seen: list[float] = []
        blocks = list(features.feature_blocks(path, cfg, block_seconds=7, progress=seen.append))
        assert len(blocks) > 10 and all(b.shape[:2] == (1, 96) for b in blocks)
        assert np.abs(np.concatenate(blocks, axis=-1) - whole).max() < 1e-4
        assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0, abs=1e-3)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(22050 * 30, np.float32), 22050)
    with pytest.warns(MERWarning, match="silent"):  # the level check comes before any block
        next(features.feature_blocks(silent, cfg))


@pytest.mark.parametrize("model", ["default", "fast"])
def test_streamed_inference_equals_the_whole_array_and_holds_one_window(model):
    """``Inference.stream`` over small blocks gives what the whole array gives (the same windows),
    for a model with per-step embeddings (default) and one without (fast), and never runs a
    window longer than one chunk with its two contexts: memory does not grow with length."""
    pred = Predictor(model)
    inf = pred.inference
    y = np.concatenate([synth.clip(0.7, 0.7, 50.0, 16000, seed=1), synth.clip(-0.7, -0.7, 60.0, 16000, seed=2)])
    x = inf.features_of(y, 16000)
    whole = inf(x)
    step = 333  # blocks that do not line up with the windows
    blocks = [x[..., i:i + step] for i in range(0, x.shape[-1], step)]
    widths = [w.x.shape[-1] for w in inf.windows(iter(blocks))]
    assert len(widths) == 4 and max(widths) <= inf.chunk + 2 * inf.context
    st = inf.stream(iter(blocks))
    assert st.frames == x.shape[-1] and st.features is None
    for k in ("static", "dynamic", "quadrant_probs"):
        if k in whole:
            assert np.abs(st.outputs[k] - whole[k]).max() < 1e-5, k
    assert st.outputs["dynamic"].shape == (n_steps(x.shape[-1], pred.feature), 2)
    if inf.engine.local:
        seq, _ = inf.embed(x)
        assert st.seq is not None and np.abs(st.seq - seq).max() < 1e-5
    short = inf.stream([x[..., :20]])  # under one step: padded, one window
    assert short.outputs["dynamic"].shape == (1, 2)
    kept = inf.stream(iter(blocks), keep_features=True)
    assert kept.features is not None and np.array_equal(kept.features, x)


def test_the_last_segment_ends_with_the_audio_and_a_short_one_is_flagged(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, synth.clip(0.4, 0.2, 21.3, 16000, seed=4), 16000)
    with pytest.warns(MERWarning, match=r"last segment \(20-21.3 s\) is only 1.3 s long"):
        p = Predictor("default")(path, segments=10)
    assert [(s.start, s.end) for s in p.segments] == [(0.0, 10.0), (10.0, 20.0), (20.0, 21.3)]
    part = Predictor("default")(path, segments=10, offset=5, duration=10)  # one whole segment: no warning
    assert [(s.start, s.end) for s in part.segments] == [(5.0, 15.0)]


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_a_pooled_head_in_pieces_equals_one_call(backend):
    """A long file's head runs in pieces (from the mean and sd, then the steps) and gives what
    one call on the whole sequence gives; a clip's short sequence takes the one call."""
    from mer.infer import inference as inf_mod

    pred = Predictor("default", backend=backend)
    inf = pred.inference
    assert inf.engine.pooled_head
    y = synth.clip(0.2, -0.3, 20.0, 16000, seed=5)
    seq, _ = inf.embed(inf.features_of(y, 16000))  # 40 real steps, repeated with noise: 3,000
    rng = np.random.default_rng(0)
    long = (np.tile(seq, (75, 1)) + rng.normal(0, 0.05, (3000, seq.shape[1]))).astype(np.float32)
    assert len(long) > inf_mod.POOLED_STEPS
    whole = {k: v[0] for k, v in inf.engine.head(long[None]).items()}
    pieces = inf._head(long)
    assert pieces.keys() == whole.keys() and pieces["dynamic"].shape == (3000, 2)
    for k in whole:
        assert np.abs(pieces[k] - whole[k]).max() < 1e-5, k
    calls = []
    real = inf.engine.head
    inf.engine.head = lambda s: calls.append(s.shape) or real(s)
    inf._head(seq)
    assert calls == [(1, len(seq), seq.shape[1])]


def test_native_windows_cover_the_steps_and_step_pool_averages_frames_into_them():
    """The arithmetic a hub encoder and its ONNX engine share (mer.grid)."""
    from mer.features import FeatureConfig
    from mer.grid import native_windows, step_pool

    f = FeatureConfig(kind="stft", sample_rate=16000, channels=1, n_fft=400, hop_length=160, compression="none")
    assert native_windows(737, f, 300) == [(0, 300, 6), (300, 600, 6), (600, 737, 2)]  # 100 frames/s, 3-s windows
    assert native_windows(640, f, 300) == [(0, 300, 6), (300, 600, 6)]  # the 0.4 s left is less than a step
    assert native_windows(737, f, 330) == [(0, 300, 6), (300, 600, 6), (600, 737, 2)]  # whole steps per window
    assert sum(m for *_, m in native_windows(10_001, f, 300)) == n_steps(10_001, f)
    # four frames 0.3 s apart, centred at 0.15, 0.45, 0.75 and 1.05 s
    np.testing.assert_array_equal(step_pool(4, 0.5, 0.3, 4), [[0.5, 0.5, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                                                              [0, 0, 0, 1]])  # step 3 has none: the nearest
    np.testing.assert_array_equal(step_pool(4, 0.5, 0.3, 2), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])  # the last takes the rest
