"""hf: backbones (mer.models.hf): tiny random transformers encoders, train -> evaluate -> predict, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers", reason="hf: backbones need transformers (pip install "
                                   "'mer-toolkit[hub]')")
import torch  # noqa: E402

from mer.errors import ModelError  # noqa: E402
from mer.models import create_model  # noqa: E402


def _whisper(path: Path) -> Path:
    cfg = transformers.WhisperConfig(d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                                     decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                                     max_source_positions=500, vocab_size=64, max_target_positions=8, pad_token_id=0,
                                     bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    transformers.WhisperModel(cfg).save_pretrained(path)
    return path


def _ast(path: Path) -> Path:
    cfg = transformers.ASTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                                 num_mel_bins=32, max_length=300)
    transformers.ASTModel(cfg).save_pretrained(path)
    return path


def _clap(path: Path) -> Path:
    audio = dict(hidden_size=16, patch_embeds_hidden_size=8, depths=[1, 1], num_attention_heads=[2, 2], window_size=4,
                 spec_size=64, num_mel_bins=16, enable_fusion=False, patch_stride=(4, 4), patch_size=4, freq_ratio=4)
    text = dict(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                max_position_embeddings=40)
    transformers.ClapModel(transformers.ClapConfig(text_config=text, audio_config=audio, projection_dim=8)
                           ).save_pretrained(path)
    return path


#: waveform encoders: 3 convolutions of total stride 320 (as the real ones: 20 ms frames at 16 kHz)
WAVE = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8, 8),
            conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


def _wave(config: str, model: str):  # noqa: ANN202
    def build(path: Path) -> Path:
        getattr(transformers, model)(getattr(transformers, config)(**WAVE)).save_pretrained(path)
        transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(path)
        return path
    return build


FAMILIES = {"whisper": _whisper, "ast": _ast, "clap": _clap, "wav2vec2": _wave("Wav2Vec2Config", "Wav2Vec2Model"),
            "hubert": _wave("HubertConfig", "HubertModel"),
            "data2vec-audio": _wave("Data2VecAudioConfig", "Data2VecAudioModel")}
RATES = {"whisper": 16000, "ast": 16000, "clap": 48000, "wav2vec2": 16000, "hubert": 16000, "data2vec-audio": 16000}
KINDS = {"clap": "stft", "whisper": "stft", "ast": "stft", "wav2vec2": "wave", "hubert": "wave",
         "data2vec-audio": "wave"}
#: the whole path (train, evaluate, predict, index) runs for each front-end; the waveform families share one
END_TO_END = ("whisper", "ast", "clap", "wav2vec2")


def _run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def _copy_4q(root: Path, per_quadrant: int) -> Path:
    """``per_quadrant`` real 4Q clips of each quadrant and the annotation CSVs, copied into ``root``."""
    from conftest import shared_path

    src = shared_path("4q-dev")
    for q in ("Q1", "Q2", "Q3", "Q4"):
        (root / q).mkdir(parents=True)
        for f in sorted((src / q).glob("*.mp3"))[:per_quadrant]:
            shutil.copy(f, root / q / f.name)
    for f in src.glob("*.csv"):
        shutil.copy(f, root / f.name)
    return root


@pytest.fixture(scope="module")
def fourq(tmp_path_factory) -> Path:
    """12 real 4Q clips (3 per quadrant) and the annotation CSVs, copied into a temporary folder."""
    return _copy_4q(tmp_path_factory.mktemp("4q"), 3)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_tiny_backbone_embeds_on_the_grid_and_records_itself(tmp_path, family):
    enc = FAMILIES[family](tmp_path / family)
    for layer in ("last", 1, "weighted"):
        if family == "clap" and layer == 1:
            with pytest.raises(ModelError, match="layer 1"):
                create_model(f"hf:{enc}", layer=layer)
            continue
        m = create_model(f"hf:{enc}", layer=layer).eval()
        caps = m.capabilities
        assert caps.step_embeddings and caps.frozen_backbone and caps.sample_rate == RATES[family]
        assert caps.window_seconds and caps.pooled_head == (layer != "weighted")
        x = torch.rand(1, 1, m.feature.n_bins, int(m.feature.frames_per_second * 7) + 1)  # 7 s of STFT frames
        seq = m.embed(x)
        assert seq.shape == (1, 14, 16 * (m.n_layers if layer == "weighted" else 1))
        out = m.head(seq)
        assert out["static"].shape == (1, 2) and out["dynamic"].shape == (1, 14, 2)
    assert not any(k.startswith("encoder") for k in m.state_dict())  # the checkpoint holds the heads only
    rec = m.spec["args"]["backbone"]
    assert rec["id"] == str(enc) and len(rec["sha1"]) == 40 and "model.safetensors" in rec["files"]
    assert m.spec["feature"]["kind"] == KINDS[family] and m.spec["feature"]["sample_rate"] == RATES[family]


def test_waveform_front_end_feeds_the_encoder_what_its_feature_extractor_does(tmp_path):
    """A clip within one native window reaches the encoder as the extractor's normalised samples."""
    import numpy as np

    from mer.features import extract

    enc = FAMILIES["wav2vec2"](tmp_path / "w2v")
    m = create_model(f"hf:{enc}").eval()
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(16000 * 4) + 0.02).astype(np.float32)  # 4 s, an offset the norm removes
    x = torch.from_numpy(extract(y, m.feature))[None]
    assert x.shape[2] == 320 and m.feature.kind == "wave"
    with torch.no_grad():
        hs, offset, seconds = m.front.encode(m.encoder, x)
        fe = transformers.Wav2Vec2FeatureExtractor.from_pretrained(enc)
        ref = m.encoder(input_values=fe(y, sampling_rate=16000, return_tensors="pt").input_values,
                        output_hidden_states=True).hidden_states
    assert hs.shape[2] == ref[0].shape[1] == 199
    for layer in range(len(ref)):
        assert torch.allclose(hs[0, layer], ref[layer][0], atol=1e-4), layer
    assert abs(offset * seconds - 325 / 2 / 16000) < 1e-9 and abs(seconds - 0.02) < 1e-9  # frame 0: its receptive field's centre


@pytest.mark.slow
@pytest.mark.parametrize("family", END_TO_END)
def test_train_evaluate_predict_a_run(tmp_path, fourq, family):
    enc = FAMILIES[family](tmp_path / family)
    out, cache = tmp_path / "run", tmp_path / "cache"
    env = {"MER_CACHE_DIR": str(cache)}
    res = _run(["train", "--dataset", "4q", "--root", str(fourq), "--model", f"hf:{enc}", "--model-arg",
                "layer=weighted", "--task", "static", "--folds", "2", "--epochs", "1", "--batch-size", "4",
                "--crop-seconds", "4", "--val-fraction", "0.34", "--cache-dir", str(cache), "--device", "cpu", "--quiet", "--out", str(out)], env)
    assert res.returncode == 0, res.stderr
    meta = json.loads((out / "fold0" / "best.json").read_text())
    assert meta["model"] == f"hf:{enc}" and meta["model_args"]["backbone"]["sha1"]
    assert meta["capabilities"]["sample_rate"] == RATES[family] and meta["feature"]["kind"] == KINDS[family]
    assert len(list((cache / "embeddings").glob("*/*.npz"))) == 12  # one cache entry per clip, shared by the folds
    ev = _run(["evaluate", str(out), "--dataset", "4q", "--root", str(fourq), "--format", "json", "--quiet"], env)
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["n"] == 12
    clip = next((fourq / "Q1").glob("*.mp3"))
    pred = _run(["predict", str(clip), "--model", str(out), "--format", "json", "--device", "cpu"], env)
    assert pred.returncode == 0, pred.stderr
    row = json.loads(pred.stdout)
    row = row[0] if isinstance(row, list) else row
    assert -1 <= row["valence"] <= 1 and len(row["valence_curve"]) >= 50
    # the music library takes the run like any model: per-step embeddings of the encoder's width
    db = tmp_path / "lib.sqlite"
    idx = _run(["index", str(fourq / "Q1"), "--db", str(db), "--model", str(out), "--device", "cpu", "--quiet"], env)
    assert idx.returncode == 0, idx.stderr
    import sqlite3

    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT count(*), min(dim), max(dim) FROM songs").fetchone()
    assert rows[0] == 3 and rows[1] == rows[2] > 0
    # the web page's API serves the run, with the same numbers as mer predict
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mer.infer import Predictor
    from mer.serve.app import create_app

    with TestClient(create_app(Predictor(str(out), device="cpu")), base_url="http://127.0.0.1:8000") as client:
        models = client.get("/api/models").json()
        assert models["current"]["model"] == str(out)
        res = client.post("/api/predict", files=[("files", (clip.name, clip.read_bytes(), "audio/mpeg"))])
        assert res.status_code == 200, res.text
        job_id = res.json()["jobs"][0]["id"]
        for _ in range(1200):
            job = client.get(f"/api/jobs/{job_id}").json()
            if job["state"] in ("done", "error"):
                break
            time.sleep(0.1)
    assert job["state"] == "done", job
    assert (job["result"]["valence"], job["result"]["arousal"]) == (row["valence"], row["arousal"])
    # the encoder's files changed since training: refused by name
    (enc / "config.json").write_text((enc / "config.json").read_text() + "\n")
    bad = _run(["predict", str(clip), "--model", str(out), "--device", "cpu"], env)
    assert bad.returncode == 1 and "files changed since this model was trained" in bad.stderr


#: runs mer predict with the ONNX engine in a process where torch and transformers cannot be imported
_ONNX_ONLY = """
import json, sys
sys.modules["torch"] = sys.modules["transformers"] = None
from mer.infer import Predictor
p = Predictor(sys.argv[1], device="cpu", backend="onnx")
out = [p(sys.argv[2], duration=d, embeddings=True) for d in json.loads(sys.argv[3])]
print(json.dumps([[r.curve.tolist(), r.step_embeddings.tolist()] for r in out]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("family", END_TO_END)
def test_runtime_export_predicts_without_torch_or_transformers(tmp_path, fourq, family):
    """`mer export --runtime` of a hub run: its window graph, cut and pooled by the ONNX engine, gives
    the PyTorch model's steps for a clip of several native windows, a part of one, and one under a step."""
    import numpy as np

    from mer.infer import Predictor
    from mer.models.checkpoint import save_checkpoint

    enc = FAMILIES[family](tmp_path / family)
    torch.manual_seed(0)
    stem = save_checkpoint(create_model(f"hf:{enc}", layer="weighted", quadrant=True), tmp_path / "run" / "best")
    res = _run(["export", "--runtime", "--model", str(stem)])
    assert res.returncode == 0, res.stderr
    clip = next((fourq / "Q4").glob("*.mp3"))
    durations = [None, 7.37, 0.3]  # several native windows, the last cut mid-frame; a part of one; under a step
    got = subprocess.run([sys.executable, "-c", _ONNX_ONLY, str(stem), str(clip), json.dumps(durations)],
                         capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stderr
    ref = Predictor(str(stem), device="cpu", backend="torch")
    for (curve, steps), d in zip(json.loads(got.stdout), durations, strict=True):
        want = ref(clip, duration=d, embeddings=True)
        assert np.asarray(steps).shape == want.step_embeddings.shape and len(curve) == max(1, int(2 * (d or 30)))
        assert np.allclose(steps, want.step_embeddings, atol=1e-4) and np.allclose(curve, want.curve, atol=1e-4)
    assert ref.engine.kind == "torch" and Predictor(str(stem), device="cpu").engine.kind == "onnx"  # auto takes them


@pytest.mark.slow
def test_finetune_last_layers_trains_and_reloads_them(tmp_path, fourq):
    from safetensors.torch import load_file

    from mer.models.checkpoint import load_checkpoint

    enc = FAMILIES["wav2vec2"](tmp_path / "w2v")
    out, cache = tmp_path / "run", tmp_path / "cache"
    res = _run(["train", "--dataset", "4q", "--root", str(fourq), "--model", f"hf:{enc}", "--finetune", "last:1",
                "--task", "static", "--folds", "2", "--epochs", "1", "--batch-size", "4", "--crop-seconds", "4",
                "--lr", "0.01", "--val-fraction", "0.34", "--cache-dir", str(cache), "--device", "cpu", "--quiet",
                "--out", str(out)])
    assert res.returncode == 0, res.stderr
    meta = json.loads((out / "fold0" / "best.json").read_text())
    assert meta["model_args"]["finetune"] == "last:1" and meta["capabilities"]["frozen_backbone"] is False
    assert not (cache / "embeddings").exists()  # trained on feature crops, not on cached embeddings
    saved = load_file(str(out / "fold0" / "best.safetensors"))
    tuned = sorted(k for k in saved if k.startswith("tuned.0."))
    assert tuned and not any(k.startswith("encoder.") for k in saved)
    pristine = create_model(f"hf:{enc}")
    model, _ = load_checkpoint(out / "fold0" / "best")
    top = dict(model.encoder.encoder.layers[-1].named_parameters())
    first = dict(pristine.encoder.encoder.layers[-1].named_parameters())
    name = tuned[0][len("tuned.0."):]
    assert torch.equal(top[name], saved[tuned[0]])  # the checkpoint's layer is back inside the encoder
    assert not all(torch.equal(top[k], first[k]) for k in top)  # and training changed it
    lower = dict(model.encoder.encoder.layers[0].named_parameters())
    assert all(torch.equal(v, dict(pristine.encoder.encoder.layers[0].named_parameters())[k]) for k, v in lower.items())
    clip = next((fourq / "Q2").glob("*.mp3"))
    pred = _run(["predict", str(clip), "--model", str(out), "--format", "json", "--device", "cpu"])
    assert pred.returncode == 0, pred.stderr
    bad = _run(["train", "--dataset", "4q", "--root", str(fourq), "--model", f"hf:{enc}", "--finetune", "last:3",
                "--out", str(tmp_path / "r2"), "--quiet"])
    assert bad.returncode == 1 and "N from 1 to the 2 layers" in bad.stderr
    bad = _run(["train", "--dataset", "4q", "--root", str(fourq), "--model", "musicnn", "--finetune", "last:1",
                "--out", str(tmp_path / "r3")])
    assert bad.returncode == 1 and "for hf: backbones" in bad.stderr


@pytest.mark.slow
def test_a_finetuned_run_killed_mid_training_resumes_to_the_same_weights(tmp_path, fourq):
    """kill -9 during `mer train --finetune last:1`, then `mer train --resume`: the tuned encoder layer
    and the heads end as in an uninterrupted run."""
    import signal

    enc = FAMILIES["wav2vec2"](tmp_path / "w2v")
    common = ["train", "--dataset", "4q", "--root", str(fourq), "--model", f"hf:{enc}", "--finetune", "last:1",
              "--task", "static", "--folds", "1", "--epochs", "30", "--patience", "0", "--batch-size", "4",
              "--crop-seconds", "4", "--val-fraction", "0.34", "--cache-dir", str(tmp_path / "cache"), "--device",
              "cpu", "--quiet"]
    ref = _run([*common, "--out", str(tmp_path / "ref")])
    assert ref.returncode == 0, ref.stderr
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "mer", *common, "--out", str(run)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    log, deadline = run / "fold0" / "log.csv", time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 4:  # header + 3 epochs done
            break
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(log.read_text().splitlines()) - 1
    assert not (run / "summary.json").exists() and 3 <= done < 30
    res = _run(["train", "--resume", str(run), "--quiet"])
    assert res.returncode == 0, res.stderr
    assert len(log.read_text().splitlines()) == 31  # the epochs after the kill, each once
    a, b = (torch.load(r / "fold0" / "state.pt", weights_only=False)["model"] for r in (tmp_path / "ref", run))
    assert any(k.startswith("tuned.") for k in a) and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_nested_benchmark_probes_a_hub_backbone_and_ships_a_model(tmp_path):
    """`mer benchmark benchmarks/nested_4q.yaml --model hf:DIR`, on a small protocol and 24 clips."""
    from conftest import shared_path

    data = _copy_4q(tmp_path / "4q", 6)
    enc = FAMILIES["wav2vec2"](tmp_path / "tiny-w2v")
    lexicon = shared_path("lexicons") / "Ratings_Warriner_et_al.csv"
    cfg = tmp_path / "nested.yaml"
    cfg.write_text(f"out: {tmp_path / 'runs' / 'nested'}\ndataset: 4q\nroot: {data}\n"
                   f"dataset_options: {{lexicon: {lexicon}}}\nprotocol: {{outer: 2, inner: 2, seeds: [0]}}\n"
                   "candidates:\n  - {label: constant, model: constant, baseline: true}\n"
                   "  - {label: LR on the encoder's mean, features: mean, model: lr, grid: {C: [0.1, 1.0]}}\n"
                   "ship: {va_alpha: [10, 100]}\n")
    env = {"MER_CACHE_DIR": str(tmp_path / "cache")}
    res = _run(["benchmark", str(cfg), "--model", f"hf:{enc}", "--model-arg", "layer=1", "--quiet"], env)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "runs" / "nested-tiny-w2v"  # the backbone's own folder beside the YAML's
    table = (out / "benchmark.md").read_text()
    assert "LR on the encoder's mean" in table and "constant" in table
    meta = json.loads((out / "model.json").read_text())
    assert meta["model"] == f"hf:{enc}" and meta["model_args"]["layer"] == 1 and meta["nested"]["f1"] >= 0
    clip = next((data / "Q3").glob("*.mp3"))
    pred = _run(["predict", str(clip), "--model", str(out / "model"), "--format", "json", "--device", "cpu"], env)
    assert pred.returncode == 0, pred.stderr
    row = json.loads(pred.stdout)
    row = row[0] if isinstance(row, list) else row
    assert row["quadrant"] in ("Q1", "Q2", "Q3", "Q4") and 0 <= row["p_q1"] <= 1 and row["confidence"] > 0
    bad = _run(["benchmark", "benchmarks/seed_zoo.yaml", "--model", f"hf:{enc}"])
    assert bad.returncode == 1 and "a grid YAML names its own models" in bad.stderr


def test_absent_cache_model_names_the_download_command(tmp_path):
    with pytest.raises(ModelError, match=r"run `hf download mer-tests/no-such-model --revision v2`"):
        create_model("hf:mer-tests/no-such-model@v2")
    res = _run(["train", "--dataset", "folder", "--root", str(tmp_path), "--model", "hf:m-a-p/MERT-v1-95M",
                "--out", str(tmp_path / "r")], {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert res.returncode == 1 and "hf download m-a-p/MERT-v1-95M" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_cached_org_name_resolves_offline_and_records_its_revision(tmp_path):
    hub = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    _whisper(hub / "models--org--tiny-whisper" / "snapshots" / commit)
    (hub / "models--org--tiny-whisper" / "refs").mkdir()
    (hub / "models--org--tiny-whisper" / "refs" / "main").write_text(commit)
    code = ("import json; from mer.models import create_model; "
            "print(json.dumps(create_model('hf:org/tiny-whisper').spec['args']['backbone']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub)})  # read at import
    assert res.returncode == 0, res.stderr
    rec = json.loads(res.stdout.strip().splitlines()[-1])
    assert rec["revision"] == commit and rec["id"] == "org/tiny-whisper" and len(rec["sha1"]) == 40


def test_remote_code_refused_without_the_flag_and_unknown_types_said_so(tmp_path):
    mert = tmp_path / "mert"
    mert.mkdir()
    (mert / "config.json").write_text(json.dumps({"model_type": "mert_model",
                                                  "auto_map": {"AutoConfig": "configuration_MERT.MERTConfig",
                                                               "AutoModel": "modeling_MERT.MERTModel"}}))
    with pytest.raises(ModelError, match="--trust-remote-code"):
        create_model(f"hf:{mert}")
    res = _run(["train", "--dataset", "folder", "--root", str(tmp_path), "--model", f"hf:{mert}", "--out",
                str(tmp_path / "r")])
    assert res.returncode == 1 and "only if you trust that code" in res.stderr
    with pytest.raises(ModelError, match="transformers cannot read its configuration"):  # trusted, but no code here
        create_model(f"hf:{mert}", trust_remote_code=True)
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match="not a supported audio encoder; supported: whisper"):
        create_model(f"hf:{other}")
    with pytest.raises(ModelError, match="no such folder"):
        create_model(f"hf:{tmp_path / 'nothing'}")


def test_default_predict_does_not_import_transformers(wav_file):
    code = ("import sys; from mer.cli import main; rc = main(['predict', sys.argv[1], '--format', 'json']); "
            "print('transformers' in sys.modules, rc)")
    res = subprocess.run([sys.executable, "-c", code, str(wav_file)], capture_output=True, text=True, timeout=300)
    assert res.stdout.strip().splitlines()[-1] == "False 0", res.stderr


@pytest.mark.parametrize("content, said", [(b"not json {", "not valid JSON"), (b"[1, 2]", "holds an array"),
                                           (b'\xff\xfe{\x00}\x00', "not UTF-8 text")])
def test_a_broken_config_json_is_one_error_naming_it(tmp_path, content, said):
    enc = FAMILIES["wav2vec2"](tmp_path / "w2v")
    (enc / "config.json").write_bytes(content)
    with pytest.raises(ModelError, match=said) as err:
        create_model(f"hf:{enc}")
    assert str(enc / "config.json") in str(err.value) and "download the model again" in str(err.value)
    (enc / "config.json").unlink()
    FAMILIES["wav2vec2"](enc)
    (enc / "preprocessor_config.json").write_bytes(content)
    with pytest.raises(ModelError, match=said):
        create_model(f"hf:{enc}")


def test_a_run_whose_backbone_config_broke_fails_in_one_line(tmp_path, wav_file):
    from mer.models.checkpoint import save_checkpoint

    enc = FAMILIES["wav2vec2"](tmp_path / "w2v")
    stem = save_checkpoint(create_model(f"hf:{enc}"), tmp_path / "run" / "best")
    (enc / "config.json").write_text("[]")
    res = _run(["predict", str(wav_file), "--model", str(stem), "--device", "cpu"])
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith("mer: error:"), res.stderr
    assert str(enc / "config.json") in lines[0] and "holds an array" in lines[0]


def _pickled(folder: Path, extra: bool) -> Path:
    """``folder``'s weights as a pickled pytorch_model.bin (``extra``: with a numpy array in it,
    which torch.load's weights_only refuses)."""
    import numpy as np
    from safetensors.torch import load_file

    state: dict = load_file(folder / "model.safetensors")
    if extra:
        state["extra"] = np.zeros(3)
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


def test_pickled_weights_transformers_refuses_are_named_with_the_safetensors_way_out(tmp_path, monkeypatch):
    enc = _pickled(FAMILIES["wav2vec2"](tmp_path / "w2v"), extra=True)
    with pytest.raises(ModelError) as err:
        create_model(f"hf:{enc}")
    msg = str(err.value)
    assert str(enc / "pytorch_model.bin") in msg and "pickle" in msg and "mer will not load" in msg
    assert "safetensors" in msg and "weights_only" not in msg and "\n" not in msg
    # transformers' own refusal of torch.load under an old torch: the same way out, not "upgrade torch"
    plain = _pickled(FAMILIES["wav2vec2"](tmp_path / "w2v-plain"), extra=False)

    def old_torch() -> None:
        raise ValueError("Due to a serious vulnerability issue in `torch.load`, even with `weights_only=True`, we now "
                         "require users to upgrade torch to at least v2.6 in order to use the function.")

    monkeypatch.setattr(transformers.modeling_utils, "check_torch_load_is_safe", old_torch)
    with pytest.raises(ModelError, match="Python pickle .* convert them to safetensors") as err:
        create_model(f"hf:{plain}")
    assert "upgrade torch" not in str(err.value)


# ------------------------------------------------------------------ what a first-time user sees (#37)
def _hf_dist(version: str, scripts: tuple[str, ...]):  # noqa: ANN202
    """A stand-in for huggingface_hub's installed distribution: its version and console scripts."""
    from importlib.metadata import EntryPoint

    class Dist:
        entry_points = [EntryPoint(name, f"huggingface_hub.cli:{name}", "console_scripts") for name in scripts]

    Dist.version = version  # type: ignore[attr-defined]
    return Dist()


def test_the_download_command_is_the_one_the_installed_hub_ships(monkeypatch):
    from importlib import metadata

    from mer.hf_hub import hf_download_command

    installed = metadata.distribution("huggingface_hub")
    has_hf = any(ep.name == "hf" for ep in installed.entry_points if ep.group == "console_scripts")
    assert hf_download_command("org/name", "v2") == (f"{'hf' if has_hf else 'huggingface-cli'} download org/name "
                                                     "--revision v2")
    monkeypatch.setattr(metadata, "distribution", lambda name: _hf_dist("1.2.0", ("hf", "tiny-agents")))
    assert hf_download_command("org/name") == "hf download org/name"
    monkeypatch.setattr(metadata, "distribution", lambda name: _hf_dist("0.23.4", ("huggingface-cli",)))
    assert hf_download_command("org/name") == "huggingface-cli download org/name"

    def absent(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", absent)
    cmd = hf_download_command("org/name", "v2")
    assert cmd == "pip install 'mer-toolkit[hub]' && hf download org/name --revision v2"
    with pytest.raises(ModelError, match=r"run `pip install 'mer-toolkit\[hub\]' && hf download org/absent`"):
        create_model("hf:org/absent")


def test_readme_and_docs_name_the_command_the_hub_ships():
    root = Path(__file__).resolve().parents[1]
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        assert "huggingface-cli" not in doc.read_text(encoding="utf-8"), doc
    assert "hf download openai/whisper-base" in (root / "README.md").read_text(encoding="utf-8")


def _mert_like(folder: Path) -> Path:
    """A folder whose config says MERT (its code would live in its own repository)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "mert_model",
                                                   "auto_map": {"AutoModel": "modeling_MERT.MERTModel"}}))
    return folder


def test_an_hf_name_where_a_run_belongs_says_how_to_make_one(tmp_path, wav_file, capsys):
    from mer.cli import main
    from mer.bundle import Bundle

    hub = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    res = _run(["predict", str(wav_file), "--model", "hf:m-a-p/MERT-v1-95M"], hub)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith("mer: error: hf:m-a-p/MERT-v1-95M:"), \
        res.stderr
    assert "no emotion heads" in lines[0] and "not found" not in lines[0]
    assert ("`mer train --model hf:m-a-p/MERT-v1-95M --trust-remote-code --dataset NAME --root DIR --out RUN`"
            in lines[0]) and "`mer predict --model RUN`" in lines[0]
    assert "`hf download m-a-p/MERT-v1-95M`" in lines[0]  # not in this (empty) cache: the step before
    enc = FAMILIES["wav2vec2"](tmp_path / "w2v")
    mert = _mert_like(tmp_path / "my-encoder")
    capsys.readouterr()  # save_pretrained's progress bars
    db = tmp_path / "lib.sqlite"
    folder_ds = tmp_path / "ds"
    folder_ds.mkdir()
    shutil.copy(wav_file, folder_ds / "clip.wav")
    (folder_ds / "labels.csv").write_text("path,valence,arousal\nclip.wav,0.1,0.2\n")
    commands = {"predict": ["predict", str(wav_file)], "index": ["index", str(tmp_path), "--db", str(db)],
                "tag": ["tag", str(wav_file)], "serve": ["serve"], "export": ["export", "--runtime"],
                "evaluate": ["evaluate", "--dataset", "folder", "--root", str(folder_ds)]}
    for name, argv in commands.items():
        for folder, trust in ((enc, ""), (mert, " --trust-remote-code")):
            assert main([*argv, "--model", f"hf:{folder}"]) == 1, name
            lines = capsys.readouterr().err.strip().splitlines()
            err = [line for line in lines if line.startswith("mer: error:")]  # (tag also sums up its files)
            assert len(err) == 1 and "no emotion heads" in err[0] and "Traceback" not in str(lines), (name, lines)
            assert f"`mer train --model hf:{folder}{trust} --dataset NAME --root DIR --out RUN`" in err[0], (name, err)
            assert "`mer predict --model RUN`" in err[0] and ("MERT" in err[0]) == bool(trust), (name, err)
    assert not db.exists()
    with pytest.raises(ModelError, match="no emotion heads"):  # the Python API resolves names in the same place
        Bundle.resolve(f"hf:{enc}")


def test_a_benchmark_on_an_absent_backbone_fails_before_any_feature_is_extracted(tmp_path):
    """`mer benchmark nested.yaml --model hf:org/absent`: the encoder is checked before the log-mel
    baselines decode a clip (they used to run for every clip first)."""
    data = _copy_4q(tmp_path / "4q", 6)
    cfg = tmp_path / "nested.yaml"
    cfg.write_text(f"out: {tmp_path / 'runs' / 'nested'}\ndataset: 4q\nroot: {data}\n"
                   "protocol: {outer: 2, inner: 2, seeds: [0]}\n"
                   "candidates:\n  - {label: constant, model: constant, baseline: true}\n"
                   "  - {label: classic, features: classic, model: lr, baseline: true, grid: {C: [1.0]}}\n"
                   "  - {label: LR on the encoder's mean, features: mean, model: lr, grid: {C: [1.0]}}\n")
    env = {"MER_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    res = _run(["benchmark", str(cfg), "--model", "hf:org/absent", "--quiet"], env)
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert res.returncode == 1 and not cached and not (tmp_path / "runs").exists(), (cached[:3], res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "`hf download org/absent`" in lines[0], res.stderr
    # remote code: refused before extraction too, and the flag is the benchmark's own
    mert = _mert_like(tmp_path / "mert")
    res = _run(["benchmark", str(cfg), "--model", f"hf:{mert}", "--quiet"], env)
    assert res.returncode == 1 and "--trust-remote-code" in res.stderr and "only if you trust" in res.stderr
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_grid_checks_every_run_before_the_first_trains(tmp_path, fourq):
    """A grid whose second model is an hf: name not in the cache fails before the first model
    trains (it used to train, then fail)."""
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"out: {tmp_path / 'runs'}\ndefaults: {{folds: 2, epochs: 1, device: cpu, crop_seconds: 2, "
                    "batch_size: 8, val_fraction: 0.45}\n"
                    f"datasets:\n  - {{dataset: 4q, root: {fourq}}}\n"
                    "models:\n  - {model: crnn, model_args: {channels: [8, 16, 16, 16], hidden: 16}}\n"
                    "  - {label: encoder, model: hf:org/absent}\n")
    env = {"MER_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    res = _run(["benchmark", str(grid), "--quiet"], env)
    assert res.returncode == 1 and not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists(), res.stderr
    assert "`hf download org/absent`" in res.stderr and len(res.stderr.splitlines()) == 1


def test_an_hf_folder_is_hashed_once_per_process_and_a_bundle_carries_the_digest(tmp_path, monkeypatch):
    """Resolved once where the name enters: building k models of one folder hashes its files once
    (was 2k+1 times for a k-fold run), and a Bundle's encoder lets another process (predict -j N's
    workers) build the model without hashing again."""
    from mer import hf_hub
    from mer.bundle import Bundle
    from mer.models.checkpoint import load_checkpoint, save_checkpoint

    enc = _whisper(tmp_path / "w")
    calls: list[Path] = []
    real = hf_hub.file_sha1
    monkeypatch.setattr(hf_hub, "file_sha1", lambda p: calls.append(Path(p)) or real(p))
    monkeypatch.setattr(hf_hub, "_DIGESTS", {})
    for _ in range(3):
        create_model(f"hf:{enc}")
    assert sorted(calls) == sorted(hf_hub.weight_files(enc))  # each file once, for three models
    save_checkpoint(create_model(f"hf:{enc}"), tmp_path / "run" / "best")
    bundle = Bundle.resolve(tmp_path / "run")
    carried = bundle.encoder
    assert carried is not None and carried.sha1 == hf_hub.folder_digest(enc)
    monkeypatch.setattr(hf_hub, "_DIGESTS", {})  # as in a fresh worker process
    calls.clear()
    model, meta = load_checkpoint(bundle)  # the bundle hands its digest over (hf_hub.remember)
    assert calls == [] and meta.backbone is not None and meta.backbone.sha1 == carried.sha1
