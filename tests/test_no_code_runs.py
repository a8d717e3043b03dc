"""Loading what a user did not make never runs code (#37).

Each payload is harmless: it creates a marker file when (and only when) its code runs. A run
folder whose JSON asks for remote code, pointing at an ``hf:`` folder that ships Python, is
loaded by ``mer predict``, ``evaluate``, ``export``, ``serve --model``, ``index``, ``tag``, the
Python API and the beets plugin: each refuses with one line naming the folder, and the marker
never appears; with the user's own ``--trust-remote-code`` the code does run (the control that
shows the payload is live). A crafted ``state.pt`` in a run folder is refused by ``mer train
--resume`` without being unpickled, and so is a pickled ``pytorch_model.bin`` in an hf: folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import synth

torch = pytest.importorskip("torch", reason="run folders are written by mer train (pip install 'mer-toolkit[train]')")
pytest.importorskip("transformers", reason="hf: backbones need transformers (pip install 'mer-toolkit[hub]')")

from test_hf import _whisper  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

CONFIG_CODE = '''import pathlib
pathlib.Path({marker!r}).touch()  # the payload: it ran
from transformers import PretrainedConfig


class EvilConfig(PretrainedConfig):
    model_type = "mert_model"
'''


def _evil_run(tmp: Path) -> tuple[Path, Path, Path]:
    """(run folder, the hf: folder whose code it asks for, the marker that code would create)."""
    from mer.models import create_model
    from mer.models.checkpoint import save_checkpoint

    marker = tmp / "CODE-RAN"
    evil = tmp / "evil-encoder"
    evil.mkdir()
    (evil / "config.json").write_text(json.dumps({
        "model_type": "mert_model",
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel"}}))
    (evil / "configuration_evil.py").write_text(CONFIG_CODE.format(marker=str(marker)))
    (evil / "modeling_evil.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    run = tmp / "downloaded-run"
    save_checkpoint(create_model(f"hf:{_whisper(tmp / 'whisper')}"), run / "best")
    meta = json.loads((run / "best.json").read_text())
    meta["model"] = f"hf:{evil}"
    meta["model_args"]["trust_remote_code"] = True  # what the probe's crafted best.json says
    meta["model_args"]["backbone"]["id"] = str(evil)
    (run / "best.json").write_text(json.dumps(meta))
    return run, evil, marker


@pytest.fixture(scope="module")
def evil(tmp_path_factory) -> tuple[Path, Path, Path]:
    return _evil_run(tmp_path_factory.mktemp("evil"))


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("music") / "song.wav"
    sf.write(p, synth.clip(0.3, 0.3, seconds=3.0, sr=16000), 16000)
    return p


def _mer(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


def _refused(res: subprocess.CompletedProcess, evil_folder: Path, marker: Path) -> None:
    assert not marker.exists(), "the run's folder code ran"
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr and len([x for x in lines if x.startswith("mer: error:")]) == 1, res.stderr
    assert str(evil_folder) in res.stderr and "--trust-remote-code" in res.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _commands(run: Path, song: Path, tmp: Path) -> dict[str, list[str]]:
    data = synth.write_dataset(tmp / "data", n=4, seconds=2.0, seed=3)
    return {
        "predict": ["predict", str(song), "--model", str(run)],
        "predict --backend torch": ["predict", str(song), "--model", str(run), "--backend", "torch"],
        "evaluate": ["evaluate", "--model", str(run), "--dataset", "folder", "--root", str(data)],
        "export --runtime": ["export", "--model", str(run), "--runtime"],
        "export --onnx": ["export", "--model", str(run), "--onnx", str(tmp / "x.onnx")],
        "index": ["index", str(song.parent), "--db", str(tmp / "lib.sqlite"), "--model", str(run)],
        "tag": ["tag", str(song), "--model", str(run)],
        "serve --model": ["serve", "--model", str(run), "--port", str(_free_port())],
    }


@pytest.mark.parametrize("command", ["predict", "predict --backend torch", "evaluate", "export --runtime",
                                     "export --onnx", "index", "tag", "serve --model"])
def test_a_run_folder_cannot_switch_remote_code_on(evil, song, tmp_path, command):
    run, folder, marker = evil
    args = _commands(run, song, tmp_path)[command]
    if command == "tag":
        pytest.importorskip("mutagen")
    if command == "serve --model":
        pytest.importorskip("fastapi")
    _refused(_mer(*args, timeout=120), folder, marker)


def test_python_api_and_the_control_with_the_users_flag(evil, song, tmp_path):
    """``mer.predict`` and ``Predictor`` refuse too; ``--trust-remote-code`` (the user's flag)
    does run the folder's code, which shows the payload above was live."""
    from mer import MERError
    from mer.infer.predictor import Predictor, predict

    run, folder, marker = evil
    with pytest.raises(MERError, match="--trust-remote-code"):
        predict(str(song), model=str(run))
    with pytest.raises(MERError, match=str(folder)):
        Predictor(str(run), backend="torch")
    assert not marker.exists()
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "hf-modules")}
    res = subprocess.run([sys.executable, "-m", "mer", "predict", str(song), "--model", str(run),
                          "--trust-remote-code"], capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert marker.exists() and res.returncode != 0  # it ran (then failed: the payload is no encoder)
    marker.unlink()


def test_beets_plugin_refuses_the_run_without_its_own_setting(evil, tmp_path):
    pytest.importorskip("beets")
    run, folder, marker = evil
    music = tmp_path / "music"
    music.mkdir()
    sf.write(music / "a.flac", synth.clip(0.2, 0.2, seconds=2.0, sr=22050), 22050)
    d = tmp_path / "beets"
    d.mkdir()
    (d / "config.yaml").write_text(f"directory: {music}\nlibrary: {d / 'library.db'}\nplugins: mer\n"
                                   "import:\n  copy: no\n  write: no\n  quiet: yes\n"
                                   f"mer:\n  model: {run}\n")
    env = {**os.environ, "BEETSDIR": str(d)}
    subprocess.run([sys.executable, "-m", "beets", "import", "-A", str(music)], capture_output=True, text=True,
                   timeout=300, cwd=REPO, env=env, check=True)
    res = subprocess.run([sys.executable, "-m", "beets", "mer"], capture_output=True, text=True, timeout=300,
                         cwd=REPO, env=env)
    assert not marker.exists() and res.returncode != 0
    assert str(folder) in res.stderr and "--trust-remote-code" in res.stderr and "Traceback" not in res.stderr


class _Payload:
    """Pickles as a call that creates the marker: what a crafted state.pt would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


@pytest.mark.slow
def test_train_resume_never_unpickles_a_crafted_state_file(tmp_path):
    root = synth.write_dataset(tmp_path / "data", n=12, seconds=3.0, seed=4)
    run = tmp_path / "run"
    res = _mer("train", "--dataset", "folder", "--root", str(root), "--model", "crnn", "--model-arg",
               "channels=[4,8,8,8]", "--model-arg", "hidden=8", "--folds", "2", "--epochs", "1", "--batch-size", "4",
               "--crop-seconds", "2", "--val-fraction", "0.34", "--device", "cpu", "--quiet",
               "--cache-dir", str(tmp_path / "cache"), "--out", str(run))
    assert res.returncode == 0, res.stderr
    state = run / "fold0" / "state.pt"
    assert state.is_file()
    good = torch.load(state, weights_only=True)  # what mer writes loads weights-only
    assert set(good) >= {"model", "optimizer", "epoch", "history"}
    marker = tmp_path / "CODE-RAN"
    torch.save({**good, "history": [_Payload(marker)]}, state)
    (run / "summary.json").unlink()  # as if interrupted during fold0
    (run / "fold0" / "test.json").unlink()
    res = _mer("train", "--resume", str(run), "--quiet")
    assert not marker.exists(), "the crafted state file ran its payload"
    assert res.returncode == 1 and f"{state}: not a resume state mer wrote" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    torch.load(state, weights_only=False)  # the control: unpickled, the payload is live
    assert marker.exists()


def test_a_pickled_hf_weights_file_is_never_unpickled(tmp_path):
    """An hf: folder whose weights are a pickle (pytorch_model.bin) carrying a payload."""
    from mer.errors import MERError
    from mer.models import create_model

    folder = _whisper(tmp_path / "w")
    for f in folder.glob("*.safetensors"):
        f.unlink()
    marker = tmp_path / "CODE-RAN"
    torch.save({"w": _Payload(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(MERError):
        create_model(f"hf:{folder}")
    assert not marker.exists()


def test_resume_state_with_numpy_numbers_in_history_still_loads(tmp_path):
    """What mer writes is weights-only loadable, numpy scores included (turned into floats)."""
    from mer.train.fold import _plain, load_state

    history = [{"epoch": 1, "val_ccc": np.float64(0.5), "val_loss": np.float32(0.25)}]
    path = tmp_path / "state.pt"
    torch.save({"model": {}, "optimizer": {}, "epoch": 1, "best": 0.25, "best_epoch": 1, "bad": 0,
                "history": _plain(history)}, path)
    st = load_state(path, torch.device("cpu"))
    assert st["history"][0]["val_ccc"] == 0.5 and isinstance(st["history"][0]["val_loss"], float)
