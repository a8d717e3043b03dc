"""The training engine: config layers and errors, learning, resume after kill -9, DDP, evaluate, benchmark."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from mer.cli import main
from mer.train.config import TrainConfig, parse_loss, parse_schedule
from mer.synth import write_dataset



@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    """40 synthetic 6 s clips whose (valence, arousal) follow their cues, with 2 Hz curves."""
    return write_dataset(tmp_path_factory.mktemp("synth"), n=40, seconds=6.0, dynamic=True, seed=0)


def _cfg_args(root: Path, cache: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", "folder", "--root", str(root), "--dataset-option", "dynamic=dynamic.csv",
            "--model", "crnn", "--model-arg", "channels=[8,16,16,16]", "--model-arg", "hidden=16",
            "--batch-size", "8", "--crop-seconds", "4", "--lr", "0.003", "--cache-dir", str(cache), "--quiet",
            "--device", "cpu", *extra]


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, text=True, timeout=600, **kw)


# ------------------------------------------------------------------ config
def test_config_layers_defaults_yaml_flags(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 7\nlr: 0.01\nmodel: cnn\n")
    cfg = TrainConfig.resolve(f, {"lr": 0.5, "epochs": None})
    assert (cfg.epochs, cfg.lr, cfg.model, cfg.batch_size) == (7, 0.5, "cnn", TrainConfig().batch_size)
    assert parse_loss("0.5*mse+ccc") == {"mse": 0.5, "ccc": 1.0}
    assert parse_schedule("step:3:0.1:1", 10) == ("step", 3.0, 0.1, 1)


@pytest.mark.parametrize("yaml_text, flags, message", [
    ("epoch: 3\n", [], "unknown config key 'epoch'; did you mean 'epochs'"),
    ("epochs: [3\n", [], "not valid YAML"),
    ("", ["--model", "resnet"], "unknown model 'resnet'; choose one of"),
    ("", ["--loss", "huber"], "loss 'huber'"),
    ("", ["--schedule", "sometimes"], "schedule 'sometimes'"),
    ("batch_size: many\n", [], "batch_size: expected int"),
])
def test_bad_configs_fail_fast_with_one_line(tmp_path, capsys, synth_root, yaml_text, flags, message):
    f = tmp_path / "c.yaml"
    f.write_text(yaml_text)
    out = tmp_path / "run"
    code = main(["train", "--config", str(f), "--dataset", "folder", "--root", str(synth_root), *flags,
                 "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_missing_root_and_too_many_folds(tmp_path, capsys, synth_root):
    assert main(["train", "--dataset", "folder", "--root", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 1
    assert "dataset folder not found" in capsys.readouterr().err
    out = tmp_path / "r2"
    assert main(["train", "--dataset", "folder", "--root", str(synth_root), "--folds", "500", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache")]) == 1
    assert "more than the 20 independent groups" in capsys.readouterr().err
    assert not list(out.glob("fold*/state.pt"))


# ------------------------------------------------------------------ learning
@pytest.mark.slow
def test_learns_static_and_dynamic_labels_from_audio(tmp_path, synth_root):
    """Held-out clips: the model beats the training-mean predictor, static and dynamic."""
    out = tmp_path / "run"
    res = _run(_cfg_args(synth_root, tmp_path / "cache", "--task", "both", "--folds", "2", "--epochs", "15",
                         "--patience", "0", "--out", str(out)))
    assert res.returncode == 0, res.stderr
    s = json.loads((out / "summary.json").read_text())
    for d in ("valence", "arousal"):
        assert s["mean"][f"{d}_rmse"] < s["constant"][f"{d}_rmse"]
        assert s["mean"][f"{d}_dyn_rmse"] < s["constant"][f"{d}_dyn_rmse"]
        assert s["mean"][f"{d}_r"] > 0.3
    for k in (0, 1):
        assert (out / f"fold{k}" / "best.safetensors").exists() and (out / f"fold{k}" / "best.json").exists()
        assert (out / f"fold{k}" / "curves.png").stat().st_size > 1000
        assert "val_loss" in (out / f"fold{k}" / "log.csv").read_text().splitlines()[0]
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["task"] == "both" and saved["model_args"]["hidden"] == 16
    # evaluate the run folder on its own dataset: out-of-fold predictions for all 40 clips
    ev = _run(["evaluate", str(out), "--dataset", "folder", "--root", str(synth_root), "--dataset-option",
               "dynamic=dynamic.csv", "--format", "json", "--quiet"],
              env={**os.environ, "MER_CACHE_DIR": str(tmp_path / "cache")})
    assert ev.returncode == 0, ev.stderr
    scores = json.loads(ev.stdout)
    assert scores["n"] == 40 and len(scores["models"]) == 2 and scores["train_overlap"] == 0
    assert scores["static"]["arousal"]["pearson"] > 0.3 and "dynamic" in scores
    # one fold's model on all clips: refused (it trained on most of them) unless told otherwise
    one = ["evaluate", str(out / "fold0" / "best.safetensors"), "--dataset", "folder", "--root", str(synth_root),
           "--quiet"]
    env = {**os.environ, "MER_CACHE_DIR": str(tmp_path / "cache")}
    refused = _run(one, env=env)
    assert refused.returncode == 1 and "were in the training data" in refused.stderr
    table = _run([*one, "--allow-train-overlap"], env=env)
    assert table.returncode == 0 and "CCC" in table.stdout and "clips scored: 40" in table.stdout
    assert "were in the model's training data" in table.stdout


# ------------------------------------------------------------------ resume
def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "fold0" / "state.pt", weights_only=False)["model"]


@pytest.mark.slow
def test_resume_after_kill_9_gives_the_same_weights(tmp_path, synth_root):
    cache = tmp_path / "cache"
    common = _cfg_args(synth_root, cache, "--folds", "1", "--epochs", "6", "--patience", "0")
    ref = _run([*common, "--out", str(tmp_path / "ref")])
    assert ref.returncode == 0, ref.stderr
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "mer", *common, "--out", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = run / "fold0" / "log.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 3:  # header + 2 epochs done
            break
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "summary.json").exists()
    res = _run(["train", "--resume", str(run), "--quiet"])
    assert res.returncode == 0, res.stderr
    a, b = _final_weights(tmp_path / "ref"), _final_weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ distributed
@pytest.mark.slow
def test_two_process_gloo_training_matches_single_process(tmp_path, synth_root):
    """torchrun with 2 CPU processes (gloo, loopback) vs one process, same global batch of 8.

    The model has no batch norm or dropout and SGD is used, so the only difference is float
    summation order in the gradient all-reduce: weights must agree within 1e-6 (measured:
    2e-9). Adam divides by sqrt of tiny second moments and amplifies that rounding to ~1e-4
    in 15 steps, which is why it is not the optimizer under test here."""
    cache = tmp_path / "cache"
    args = ["train", "--dataset", "folder", "--root", str(synth_root), "--model", "cnn", "--model-arg", "norm=false",
            "--model-arg", "channels=[4,4,8,8,8]", "--folds", "1", "--epochs", "3", "--patience", "0",
            "--batch-size", "8", "--crop-seconds", "4", "--cache-dir", str(cache), "--quiet", "--device", "cpu",
            "--optimizer", "sgd"]
    single = _run([*args, "--out", str(tmp_path / "single")])
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "mer", *args, "--out", str(tmp_path / "ddp")], capture_output=True, text=True,
                         timeout=600, env=env)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    a, b = _final_weights(tmp_path / "single"), _final_weights(tmp_path / "ddp")
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert diff < 1e-6, diff
    # only rank 0 writes, atomically: no temporary file (".NAME.XXXX") is left behind by either process
    leftovers = [p.name for p in (tmp_path / "ddp").rglob(".*") if p.is_file() and p.name != ".lock"]
    assert not leftovers and (tmp_path / "ddp" / "fold0" / "state.pt").is_file(), leftovers


# ------------------------------------------------------------------ benchmark
@pytest.mark.slow
def test_benchmark_grid_writes_one_table(tmp_path, synth_root):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({
        "out": str(tmp_path / "bench"),
        "defaults": {"folds": 2, "epochs": 2, "patience": 0, "batch_size": 8, "crop_seconds": 4,
                     "cache_dir": str(tmp_path / "cache"), "device": "cpu"},
        "datasets": [{"dataset": "folder", "root": str(synth_root)}],
        "models": [{"model": "dense", "model_args": {"hidden": [16, 8], "frames": 32}},
                   {"label": "tiny_cnn", "model": "cnn", "model_args": {"channels": [4, 4, 4, 4, 4]}}]}))
    res = _run(["benchmark", str(grid), "--quiet"])
    assert res.returncode == 0, res.stderr
    table = (tmp_path / "bench" / "benchmark.md").read_text()
    for row in ("| dense |", "| tiny_cnn |", "| constant (training mean) |"):
        assert row in table
    assert "valence r" in table and "±" in table
