"""Hostile model files and a corrupt MP3 against the real ``mer predict`` (and ``mer train``).

Builds each case in a temporary folder, runs ``python -m mer ...`` as a subprocess there and
checks what reaches stderr: exactly one ``mer: error:`` line that names the file at fault and
says what to do, every line mer's own (no traceback, no ``internal error``, no library noise),
and the exit status. Prints ``case | expected | got | PASS/FAIL`` (got: exit status, stderr's
line count and its first line); exits 1 when any case fails.

    .venv/bin/python -m benchmarks.hostile_models     # about a minute on 2 cores

Cases: an ``hf:`` backbone whose ``config.json`` is not JSON, a JSON list, not UTF-8 (a run that
uses it, and ``mer train --model hf:DIR``), a broken ``preprocessor_config.json``, pickled
``pytorch_model.bin`` weights that transformers refuses (a numpy array inside, which
``weights_only`` rejects); the two ONNX graphs of ``mer export --runtime`` swapped (one file, and
a batch run by worker processes), one graph in both places, a ``mer export --onnx`` graph in
place of the embed graph, a graph cut short; ``--model`` naming a text file or a ``.safetensors``
without mer's metadata; an MP3 whose frames are garbled so that libmpg123 (inside libsndfile)
fails, and one where it skips frames. The hub cases need transformers (``[hub]``) and are
reported as skipped without it; the ``--onnx`` case needs the exporter (``[export]``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.cases import Cases
from mer import synth

REPO = Path(__file__).resolve().parents[1]
CASES = Cases()
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def mer(cwd: Path, *args: str) -> tuple[int, list[str]]:
    """(exit status, stderr's lines) of ``python -m mer ARGS`` run in ``cwd``."""
    res = subprocess.run([sys.executable, "-m", "mer", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                         timeout=300)
    return res.returncode, res.stderr.strip().splitlines()


def check(case: str, expected: str, cwd: Path, args: list[str], needles: tuple[str, ...], rc_want: int = 1,
          errors: int = 1) -> list[str]:
    """Run ``mer ARGS``: exit ``rc_want``, ``errors`` ``mer: error:`` lines (the first line of all)
    holding every needle, every line mer's own; return stderr's lines."""
    rc, lines = mer(cwd, *args)
    first = lines[0] if lines else ""
    said = [ln for ln in lines if ln.startswith("mer: error:")]
    ok = (rc == rc_want and len(said) == errors and all(ln.startswith("mer: ") for ln in lines)
          and not any(ln.startswith("mer: internal error") or "Traceback" in ln for ln in lines)
          and all(n in first for n in needles) and (not errors or first.startswith("mer: error:")))
    CASES.check(case, expected, f"rc {rc}, {len(lines)} line(s): {first.replace(f'{cwd}/', '')}", ok)
    return lines


def skip(case: str, why: str) -> None:
    CASES.check(case, "(skipped)", why, True)


# --------------------------------------------------------------------------- hf: folders
def hub_cases(tmp: Path, song: str) -> None:
    hub = ("hf config.json not JSON", "hf config.json a JSON list", "hf config.json not UTF-8",
           "mer train --model hf:DIR, config.json not JSON", "hf preprocessor_config.json a list",
           "hf pickled pytorch_model.bin (train)")
    if importlib.util.find_spec("transformers") is None:
        for case in hub:
            skip(case, "transformers is not installed (pip install 'mer-toolkit[hub]')")
        return
    import torch
    import transformers
    from safetensors.torch import load_file

    from mer.models import create_model
    from mer.models.checkpoint import save_checkpoint

    transformers.utils.logging.disable_progress_bar()
    enc = tmp / "w2v"
    cfg = transformers.Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                                      conv_dim=(8, 8, 8), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8),
                                      num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    transformers.Wav2Vec2Model(cfg).save_pretrained(enc)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(enc)
    save_checkpoint(create_model(f"hf:{enc}"), tmp / "hubrun" / "best")
    good = (enc / "config.json").read_bytes()
    predict = ["predict", song, "--model", "hubrun", "--device", "cpu"]
    for case, content, said in ((hub[0], b"{ not json", "not valid JSON"), (hub[1], b"[1, 2]", "holds an array"),
                                (hub[2], b"\xff\xfe{\x00}\x00", "not UTF-8 text")):
        (enc / "config.json").write_bytes(content)
        check(case, "one line naming config.json", tmp, predict, (f"{enc / 'config.json'}: {said}", "restore"))
    (enc / "config.json").write_bytes(b"{ not json")
    train = ["train", "--dataset", "folder", "--root", "songs", "--folds", "1", "--epochs", "1", "--quiet",
             "--device", "cpu"]
    check(hub[3], "one line naming config.json", tmp, [*train, "--model", f"hf:{enc}", "--out", "r1"],
          (f"{enc / 'config.json'}: not valid JSON",))
    (enc / "config.json").write_bytes(good)
    (enc / "preprocessor_config.json").write_bytes(b"[]")
    check(hub[4], "one line naming the file", tmp, predict, (f"{enc / 'preprocessor_config.json'}: holds an array",))
    pickled = tmp / "pickled"
    shutil.copytree(enc, pickled)
    (pickled / "preprocessor_config.json").write_bytes(b"{}")
    state = dict(load_file(pickled / "model.safetensors"))
    torch.save({**state, "extra": np.zeros(3)}, pickled / "pytorch_model.bin")  # weights_only refuses numpy
    (pickled / "model.safetensors").unlink()
    lines = check(hub[5], "pickle refused, convert to safetensors", tmp,
                  [*train, "--model", f"hf:{pickled}", "--out", "r2"],
                  ("pytorch_model.bin: this folder's weights are a Python pickle", "safetensors"))
    CASES.check("  ... and never suggests weights_only", "no 'weights_only'", f"{sum('weights_only' in ln for ln in lines)}"
                " mention(s)", not any("weights_only" in ln for ln in lines))


# --------------------------------------------------------------------------- ONNX graphs
def onnx_cases(tmp: Path, songs: list[str]) -> None:
    from mer.bundle import PRETRAINED

    def fresh(name: str) -> Path:
        folder = tmp / name
        folder.mkdir()
        for f in PRETRAINED.glob("default.*"):
            shutil.copy(f, folder / f.name)
        return folder

    d = fresh("swapped")
    (d / "default.embed.onnx").write_bytes((PRETRAINED / "default.head.onnx").read_bytes())
    (d / "default.head.onnx").write_bytes((PRETRAINED / "default.embed.onnx").read_bytes())
    for case, files in (("ONNX graphs swapped", songs[:1]), ("ONNX graphs swapped, 3 files (workers)", songs)):
        check(case, "one line: the embed graph expected", tmp, ["predict", *files, "--model", "swapped/default"],
              ("swapped/default.embed.onnx: not the embed graph", "take 'features'", "look swapped"))
    d = fresh("twoembeds")
    (d / "default.head.onnx").write_bytes((PRETRAINED / "default.embed.onnx").read_bytes())
    check("ONNX embed graph in both places", "one line: the head graph expected", tmp,
          ["predict", songs[0], "--model", "twoembeds/default"], ("twoembeds/default.head.onnx: not the head graph",
                                                                 "take 'sequence'"))
    d = fresh("cut")
    data = (PRETRAINED / "default.embed.onnx").read_bytes()
    (d / "default.embed.onnx").write_bytes(data[: len(data) // 3])
    check("ONNX embed graph cut short, 3 files", "one line: unreadable graph", tmp,
          ["predict", *songs, "--model", "cut/default"], ("cut/default.embed.onnx: unreadable ONNX graph",))
    case = "`mer export --onnx` graph as the embed graph"
    if importlib.util.find_spec("onnxscript") is None or importlib.util.find_spec("torch") is None:
        skip(case, "the exporter is not installed (pip install 'mer-toolkit[export]')")
        return
    rc, lines = mer(tmp, "export", "--model", "default", "--onnx", "single.onnx", "--seconds", "3")
    if rc:
        CASES.check(case, "export works", lines[:1], False)
        return
    d = fresh("single")
    shutil.copy(tmp / "single.onnx", d / "default.embed.onnx")
    check(case, "one line: the embed graph expected", tmp, ["predict", songs[0], "--model", "single/default"],
          ("single/default.embed.onnx: not the embed graph", "mer export --onnx"))


# --------------------------------------------------------------------------- not checkpoints
def checkpoint_cases(tmp: Path, song: str) -> None:
    from safetensors.numpy import save_file

    (tmp / "notes.txt").write_text("not a model\n")
    save_file({"w": np.zeros(3, dtype=np.float32)}, str(tmp / "random.safetensors"))
    for case, model in (("--model a text file", "notes.txt"), ("--model a .safetensors without mer's JSON",
                                                                "random.safetensors")):
        check(case, "one line: not a mer checkpoint", tmp, ["predict", song, "--model", model],
              (f"{model}: not a mer checkpoint", "a run folder of `mer train`"))


# --------------------------------------------------------------------------- a corrupt MP3
def garbled(clean: Path, out: Path, fails: bool) -> Path | None:
    """``clean`` with every third byte of 2000 garbled: the first junk seed with which mer's
    decoding fails (``fails``) or warns that frames were skipped."""
    from mer import audio
    from mer.errors import MERError

    data = clean.read_bytes()
    for seed in range(20):
        bad = bytearray(data)
        bad[20000:22000:3] = np.random.default_rng(seed).integers(0, 256, 667, dtype=np.uint8).tobytes()
        out.write_bytes(bytes(bad))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                audio.load(out)
            except MERError:
                if fails:
                    return out
                continue
        if not fails and any("damaged MP3 frames" in str(w.message) for w in caught):
            return out
    return None


def mp3_cases(tmp: Path) -> None:
    y = synth.clip(-0.5, 0.5, seconds=5.0, sr=44100)
    clean = tmp / "clean.mp3"
    sf.write(clean, np.stack([y, 0.5 * y], axis=1), 44100, format="MP3")
    bad = garbled(clean, tmp / "corrupt.mp3", fails=True)
    if bad is None:
        CASES.check("corrupt MP3", "a junk seed that fails", "none found", False)
    else:
        check("corrupt MP3 (libmpg123 fails)", "mer's error line only", tmp, ["predict", bad.name],
              ("corrupt.mp3: decoding failed", "libmpg123:"))
    damaged = garbled(clean, tmp / "damaged.mp3", fails=False)
    if damaged is None:
        CASES.check("damaged MP3", "a junk seed that skips frames", "none found", False)
    else:
        check("damaged MP3 (frames skipped)", "one mer warning, exit 0", tmp, ["predict", damaged.name, "-q"],
              ("mer: warning: damaged.mp3: damaged MP3 frames were skipped",), rc_want=0, errors=0)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mer-hostile-models-") as t:
        tmp = Path(t)
        (tmp / "songs").mkdir()
        rows = ["path,valence,arousal"]
        for i in range(3):
            sf.write(tmp / "songs" / f"s{i}.wav", synth.clip(0.3, -0.2, 3.0, 16000, seed=i), 16000)
            rows.append(f"s{i}.wav,{0.1 * i},{-0.1 * i}")
        (tmp / "songs" / "labels.csv").write_text("\n".join(rows) + "\n")
        songs = [f"songs/s{i}.wav" for i in range(3)]
        hub_cases(tmp, songs[0])
        onnx_cases(tmp, songs)
        checkpoint_cases(tmp, songs[0])
        mp3_cases(tmp)
    return CASES.report()


if __name__ == "__main__":
    sys.exit(main())
