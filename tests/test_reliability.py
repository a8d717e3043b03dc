"""Faults: killed parents leave no workers, run folders are locked, resumes refuse a changed
dataset, nothing is written over its input, killed writers' temporary files are cleaned up,
and a full disk or a bad flag is a one-line error."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import MERError, MERWarning, synth
from mer.io import atomic_path, clean_stale_temps, run_lock
from mer.synth import write_dataset

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _mer(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, text=True, timeout=600,
                          env={**ENV, **kw.pop("env", {})}, **kw)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


@pytest.fixture(scope="module")
def many_wavs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("many")
    for i in range(40):
        sf.write(d / f"c{i:02d}.wav", synth.clip(0.3, 0.3, 20.0, 16000, seed=i), 16000)
    return d


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc (Linux) to find worker processes")
@pytest.mark.parametrize("command", ["predict", "convert"])
def test_workers_exit_when_the_parent_is_killed(many_wavs, tmp_path, command):
    args = ["predict", str(many_wavs), "--workers", "2", "-q"] if command == "predict" else \
        ["convert", str(many_wavs), str(tmp_path / "out"), "--workers", "2", "-q"]
    proc = subprocess.Popen([sys.executable, "-m", "mer", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=ENV)
    deadline, workers = time.time() + 60, []
    while time.time() < deadline and len(workers) < 2:  # the pool's workers (and its resource tracker)
        workers = [c for c in _children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
        time.sleep(0.1)
    assert len(workers) >= 2, "workers did not start"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and not all(_gone(w) for w in workers):
        time.sleep(0.1)
    assert all(_gone(w) for w in workers), "workers outlived their parent"


def test_run_folder_lock_is_exclusive_and_released_by_a_dead_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from mer.io import run_lock\n"
                               f"with run_lock({str(tmp_path)!r}):\n    print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(MERError, match="another process is using this run folder"):
        with run_lock(tmp_path):
            pass
    res = _mer("train", "--resume", str(tmp_path))  # the CLI says the same (config.yaml missing comes first)
    assert res.returncode == 1
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with run_lock(tmp_path):  # taken over: the OS released the dead holder's lock
        pass


@pytest.mark.slow
def test_train_refuses_a_second_process_and_a_changed_dataset_on_resume(tmp_path):
    root = write_dataset(tmp_path / "data", n=12, seconds=3.0, seed=4)
    args = ["train", "--dataset", "folder", "--root", str(root), "--model", "crnn", "--model-arg",
            "channels=[4,8,8,8]", "--model-arg", "hidden=8", "--folds", "2", "--epochs", "1", "--batch-size", "4",
            "--crop-seconds", "2", "--val-fraction", "0.34", "--device", "cpu", "--quiet",
            "--cache-dir", str(tmp_path / "cache")]
    run = tmp_path / "run"
    with run_lock(run):  # another process (here: this one) holds the folder
        res = _mer(*args, "--out", str(run))
        assert res.returncode == 1 and "another process is using this run folder" in res.stderr
    res = _mer(*args, "--out", str(run))
    assert res.returncode == 0, res.stderr
    (run / "summary.json").unlink()  # as if interrupted during the second fold
    (run / "fold1" / "test.json").unlink()
    labels = root / "labels.csv"
    lines = labels.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 3)[0] + ",0.9,0.9," + lines[1].rsplit(",", 1)[1]  # one label changed
    labels.write_text("\n".join(lines) + "\n")
    split_before = (run / "split.json").read_text()
    res = _mer("train", "--resume", str(run), "--quiet")
    assert res.returncode == 1 and "the dataset changed since this run started" in res.stderr
    assert (run / "split.json").read_text() == split_before


KILLED_WRITE = """
import os, signal, sys
from mer.io import atomic_path
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # kill -9 just before the rename
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half-written")
"""


def test_convert_never_writes_over_its_input_and_cleans_killed_temps(tmp_path):
    src = tmp_path / "music"
    src.mkdir()
    sf.write(src / "a.wav", synth.clip(0.2, 0.2, 2.0, 48000, seed=1), 48000, subtype="PCM_24")
    before = (src / "a.wav").read_bytes()
    res = _mer("convert", str(src), str(src), "--overwrite", "-q")
    assert res.returncode == 2 and "is an input of this run" in res.stderr
    assert (src / "a.wav").read_bytes() == before
    out = tmp_path / "out"
    out.mkdir()
    lookalike = out / ".a.wav.mer-999999-x1.wav"  # named like a killed writer's temporary, but no journal
    live = out / f".b.wav.mer-{os.getpid()}-x2.wav"  # one of a process still running
    lookalike.write_bytes(b"half")
    live.write_bytes(b"busy")
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(out / "c.wav")], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    (dead,) = out.glob(".c.wav.mer-*")  # the temporary the killed writer journalled
    res = _mer("convert", str(src), str(out), "-q")
    assert res.returncode == 0, res.stderr
    assert not dead.exists() and f"mer: removed {dead}" in res.stderr
    assert lookalike.exists() and live.exists() and (out / "a.wav").is_file()
    assert _mer("convert", str(src), str(out), "--sr", "0").stderr.startswith("mer: error: --sr 0")


def test_disk_full_is_a_one_line_error_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    target.write_text("old")

    def full(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(MERError, match=f"disk full: {target}"):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["result.json"]
    assert clean_stale_temps(tmp_path) == []


@pytest.mark.parametrize("flag, message", [
    (["--seed", "-5"], "seed must be 0 or more"),
    (["--patience", "-1"], "patience must be 0 or more"),
])
def test_bad_training_flags_are_one_line(tmp_path, flag, message):
    root = write_dataset(tmp_path / "d", n=4, seconds=1.0)
    res = _mer("train", "--dataset", "folder", "--root", str(root), "--out", str(tmp_path / "o"), *flag)
    assert res.returncode == 1 and message in res.stderr and res.stderr.count("\n") == 1


def test_predict_output_to_a_folder_is_a_clear_error(tmp_path, wav_file):
    res = _mer("predict", str(wav_file), "-o", str(tmp_path))
    assert res.returncode == 1 and "is a folder" in res.stderr and "internal error" not in res.stderr


@pytest.mark.slow
def test_corrupt_resume_state_and_bad_schedules_name_the_fix(tmp_path):
    from mer import ConfigError
    from mer.train.config import parse_schedule

    for spec in ("step:0:0.1", "step:3:0", "step:3:-1"):
        with pytest.raises(ConfigError, match="EPOCHS >= 1 and a FACTOR"):
            parse_schedule(spec, 10)
    root = write_dataset(tmp_path / "data", n=12, seconds=3.0, seed=5)
    args = ["train", "--dataset", "folder", "--root", str(root), "--model", "crnn", "--model-arg",
            "channels=[4,8,8,8]", "--model-arg", "hidden=8", "--folds", "1", "--epochs", "2", "--batch-size", "4",
            "--crop-seconds", "2", "--val-fraction", "0.34", "--device", "cpu", "--quiet",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    assert _mer(*args).returncode == 0
    (tmp_path / "run" / "summary.json").unlink()
    (tmp_path / "run" / "fold0" / "test.json").unlink()
    (tmp_path / "run" / "fold0" / "state.pt").write_bytes(b"\x00garbage")
    res = _mer("train", "--resume", str(tmp_path / "run"), "--quiet")
    assert res.returncode == 1 and "state.pt: corrupt resume state" in res.stderr and "delete it" in res.stderr
    res = _mer("export", "--onnx", str(tmp_path / "m.onnx"), "--seconds", "0")
    assert res.returncode == 1 and "--seconds 0" in res.stderr


def test_edited_or_diverged_checkpoints_are_model_errors_not_audio_errors(tmp_path):
    import json
    import shutil

    from safetensors.numpy import load_file, save_file

    from mer import ModelError
    from mer.bundle import PRETRAINED
    from mer.infer import Predictor

    for suffix in (".json", ".safetensors", ".embed.onnx", ".head.onnx"):
        shutil.copy(PRETRAINED / f"default{suffix}", tmp_path / f"m{suffix}")
    meta = json.loads((tmp_path / "m.json").read_text())
    meta["feature"]["n_mels"] = 64  # a wrong n_mels in the JSON would compute other features
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="ONNX graph takes 1 x 96"):
        Predictor(tmp_path / "m")
    meta["feature"]["n_mels"] = 96
    (tmp_path / "m.json").write_text(json.dumps(meta))
    weights = load_file(tmp_path / "m.safetensors")
    weights["heads.static.bias"] = np.full_like(weights["heads.static.bias"], np.nan)
    save_file(weights, str(tmp_path / "m.safetensors"))
    with pytest.raises(ModelError, match="hold NaN or inf"):
        Predictor(tmp_path / "m", backend="torch")


@pytest.mark.slow
def test_train_and_evaluate_refuse_labels_off_their_scale(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    for n in "ab":
        sf.write(root / f"{n}.wav", synth.clip(0.2, 0.2, 2.0, 16000), 16000)
    (root / "labels.csv").write_text("path,valence,arousal\na.wav,42,0.1\nb.wav,0.2,0.2\n")
    res = _mer("train", "--dataset", "folder", "--root", str(root), "--out", str(tmp_path / "run"), "-q")
    assert res.returncode == 1 and "valence 42 outside the canonical scale" in res.stderr
    assert "mer datasets validate" in res.stderr and not (tmp_path / "run" / "split.json").exists()
    res = _mer("evaluate", "default", "--dataset", "folder", "--root", str(root), "-q")
    assert res.returncode == 1 and "outside the canonical scale" in res.stderr
    res = _mer("evaluate", "default", "--dataset", "folder", "--root", str(root), "--dataset-option", "clip=true", "-q")
    assert res.returncode == 0, res.stderr


def test_symlinked_and_unreadable_folders_and_broken_outputs(tmp_path):
    music = tmp_path / "music"
    (music / "real").mkdir(parents=True)
    sf.write(music / "real" / "a.wav", synth.clip(0.2, 0.2, 1.5, 16000), 16000)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sf.write(elsewhere / "b.wav", synth.clip(0.2, 0.2, 1.5, 16000), 16000)
    (music / "linked").symlink_to(elsewhere, target_is_directory=True)
    (music / "loop").symlink_to(music, target_is_directory=True)  # a loop ends
    from mer import audio

    found = sorted(p.name for p in audio.find_audio([music]))
    assert found == ["a.wav", "b.wav"]
    out = tmp_path / "out"
    assert _mer("convert", str(music), str(out), "-q").returncode == 0
    broken = out / "real" / "a.wav"
    broken.write_bytes(broken.read_bytes()[:60])  # a half-written output from some other tool
    res = _mer("convert", str(music), str(out), "-q")
    assert res.returncode == 0 and "converted 1" in res.stdout and sf.info(str(broken)).frames > 0
    if os.geteuid() != 0:  # root reads every folder
        locked = music / "locked"
        locked.mkdir()
        locked.chmod(0)
        with pytest.warns(MERWarning, match="folder cannot be read"):
            audio.find_audio([music])
        locked.chmod(0o755)


@pytest.mark.slow
def test_a_worker_that_dies_fails_its_file_and_the_batch_goes_on(tmp_path, kill_on):
    from mer.infer.predictor import run_batch

    files = []
    for i in range(5):
        p = tmp_path / f"c{i}.wav"
        sf.write(p, synth.clip(0.2, 0.2, 2.0, 16000, seed=i), 16000)
        files.append(str(p))
    killer = tmp_path / "kill.wav"  # the stand-in (conftest.kill_on) kills the worker that gets it
    sf.write(killer, synth.clip(0.2, 0.2, 2.0, 16000), 16000)
    order = files[:2] + [str(killer)] + files[2:]
    kill_on(killer)  # for the worker processes spawned below
    results = list(run_batch("default", order, workers=2))
    assert [Path(r.path).name for r in results] == [Path(p).name for p in order]
    dead = [r for r in results if r.path == str(killer)][0]
    assert dead.prediction is None and "worker process predicting it died" in dead.error
    assert sum(r.prediction is not None for r in results) >= 4
