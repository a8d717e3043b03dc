"""``mer evaluate``: never on the model's own training clips, and the numbers ``mer predict`` outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import ConfigError, synth
from mer.evaluation.evaluate import evaluate
from mer.bundle import Bundle
from mer.infer import Predictor
from mer.synth import write_dataset

REPO = Path(__file__).resolve().parents[1]


def _mer(args: list[str], cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MER_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env=env)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A 2-fold run trained with a *relative* --root, from the folder that holds the data."""
    base = tmp_path_factory.mktemp("leak")
    write_dataset(base / "data", n=12, seconds=4.0, seed=3)
    res = _mer(["train", "--dataset", "folder", "--root", "data", "--model", "crnn", "--model-arg",
                "channels=[4,8,8,8]", "--model-arg", "hidden=8", "--folds", "2", "--epochs", "1", "--batch-size", "4",
                "--crop-seconds", "2", "--val-fraction", "0.34", "--device", "cpu", "--quiet", "--out", "run"], base, base / "cache")
    assert res.returncode == 0, res.stderr
    return {"base": base, "run": base / "run", "data": base / "data"}


@pytest.mark.slow
def test_run_folder_is_scored_out_of_fold_from_another_directory_and_through_a_symlink(trained, tmp_path):
    link = tmp_path / "linked-data"
    link.symlink_to(trained["data"], target_is_directory=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    meta = json.loads((trained["run"] / "fold0" / "best.json").read_text())
    assert Path(meta["dataset_root"]).is_absolute() and meta["training"]["fingerprint"]
    for root in (str(link), os.path.relpath(trained["data"], elsewhere)):
        res = _mer(["evaluate", str(trained["run"]), "--dataset", "folder", "--root", root, "--format", "json",
                    "--quiet", "--device", "cpu"], elsewhere, trained["base"] / "cache")
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        # every clip scored by the fold model whose test part held it: both folds used, no overlap
        assert doc["n"] == 12 and doc["train_overlap"] == 0 and doc["same_dataset_as_training"]
        assert sorted(m["clips"] for m in doc["models"]) == [6, 6]
        assert len({m["weights_sha1"] for m in doc["models"]}) == 2


@pytest.mark.slow
def test_single_checkpoint_on_its_training_clips_is_refused(trained, tmp_path):
    link = tmp_path / "linked-data"
    link.symlink_to(trained["data"], target_is_directory=True)
    ckpt = trained["run"] / "fold0" / "best.safetensors"
    with pytest.raises(ConfigError, match="were in the training data"):
        evaluate(ckpt, "folder", link, device="cpu", progress=False)
    res = _mer(["evaluate", str(ckpt), "--dataset", "folder", "--root", str(link), "--quiet", "--device", "cpu"],
               tmp_path, trained["base"] / "cache")
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "--allow-train-overlap" in res.stderr
    # a copy of the data elsewhere is the same data (same fingerprint): still refused
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in trained["data"].iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ConfigError, match="were in the training data"):
        evaluate(ckpt, "folder", copy, device="cpu", progress=False)
    scores, _ = evaluate(ckpt, "folder", copy, device="cpu", progress=False, allow_train_overlap=True)
    assert scores["train_overlap"] > 0 and scores["n"] == 12


def test_bundled_default_is_refused_on_4q_and_evaluates_elsewhere(shared):

    fourq = shared("4q-dev")
    with pytest.raises(ConfigError, match="were in the training data of default"):
        evaluate("default", "4q", fourq, progress=False)
    scores, _ = evaluate("default", "emomusic", shared("emomusic-mini"), progress=False)
    assert scores["n"] == 10 and scores["models"][0]["model"] == "default"
    assert scores["models"][0]["weights_sha1"] == Bundle.resolve("default").digest
    assert scores["models"][0]["engine"] == "onnx" and "static" in scores and "dynamic" in scores


def test_evaluate_scores_what_predict_outputs_on_a_long_file(tmp_path):
    """A 90 s clip runs in windows; evaluate must see the same numbers as predict (a non-musicnn model)."""
    torch = pytest.importorskip("torch")
    from mer.models import create_model
    from mer.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(create_model("crnn", channels=[4, 8, 8, 8], hidden=8), tmp_path / "m")
    data = tmp_path / "data"
    data.mkdir()
    rows = ["path,valence,arousal"]
    for name, seconds, (v, a) in (("long.wav", 90.0, (0.5, 0.5)), ("a.wav", 6.0, (-0.5, 0.2)),
                                  ("b.wav", 6.0, (0.1, -0.6))):
        sf.write(data / name, np.concatenate([synth.clip(v, a, seconds / 2, 16000, seed=1),
                                              synth.clip(-v, -a, seconds / 2, 16000, seed=2)]), 16000)
        rows.append(f"{name},{v},{a}")
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    scores, _ = evaluate(tmp_path / "m.safetensors", "folder", data, device="cpu", progress=False)
    predictor = Predictor(tmp_path / "m.safetensors", device="cpu")
    for row in scores["predictions"]:
        p = predictor(data / row["id"])
        assert abs(p.valence - row["valence"]) < 1e-4 and abs(p.arousal - row["arousal"]) < 1e-4, row
    # and the windows matter: the one-pass whole-clip output of this model is different
    x = predictor.features(data / "long.wav")
    whole = predictor.engine.forward(x[None])["static"][0]
    assert np.abs(whole - predictor.inference(x)["static"]).max() > 1e-4
