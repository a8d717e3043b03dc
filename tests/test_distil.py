"""Distillation (#41): ``mer train --distil default --model student`` on synthetic clips trains, resumes
to the same weights, exports the runtime graphs and predicts with them as with PyTorch; the student
model, the augmentation and the config errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mer.cli import main
from mer.features import FeatureConfig
from mer.grid import n_steps
from mer.models import create_model
from mer.synth import write_dataset
from mer.train.augment import augment


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    """12 synthetic 8 s clips (labels are not used by distillation; the folder loader wants them)."""
    return write_dataset(tmp_path_factory.mktemp("synth"), n=12, seconds=8.0, seed=0)


def _train(root: Path, cache: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return ["train", "--dataset", "folder", "--root", str(root), "--distil", "default", "--model", "student",
            "--model-arg", "width=8", "--model-arg", "hidden=32", "--model-arg", "wide=8", "--epochs", str(epochs), "--patience", "0",
            "--folds", "2", "--val-fraction", "0.3", "--crop-seconds", "6", "--batch-size", "4",
            "--cache-dir", str(cache), "--device", "cpu", "--quiet", "--out", str(out), *extra]


def test_distil_trains_resumes_exports_and_predicts(tmp_path, synth_root, capsys):
    cache = tmp_path / "cache"
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    assert main(_train(synth_root, cache, ref, 2, "--augment", "1")) == 0
    printed = capsys.readouterr().out
    assert "distilled from default" in printed and "tags_top5" in printed
    summary = json.loads((ref / "summary.json").read_text())
    assert summary["task"] == "distil" and set(summary["agreement"]) >= {"embedding_r2", "tags_top5", "quadrant_agree"}
    best = json.loads((ref / "fold0" / "best.json").read_text())
    assert best["model"] == "student" and best["capabilities"]["step_embeddings"]
    assert best["distil"]["teacher"] == "default" and best["distil"]["augment"] == 1
    assert len(best["model_args"]["tag_names"]) == 50 and best["model_args"]["quadrant"]
    held = set(json.loads((ref / "split.json").read_text())["folds"][0]["test"])
    assert not held & set(best["training"]["ids"])  # a fold's student never heard its test clips

    # interrupted after one epoch of each fold: resuming ends with the weights of the run that never stopped
    assert main(_train(synth_root, cache, cut, 1, "--augment", "1")) == 0
    for f in ("summary.json", "summary.md", "fold0/test.json", "fold1/test.json"):
        (cut / f).unlink()
    cfg = yaml.safe_load((cut / "config.yaml").read_text())
    (cut / "config.yaml").write_text(yaml.safe_dump({**cfg, "epochs": 2}, sort_keys=False))
    assert main(["train", "--resume", str(cut), "--quiet"]) == 0
    for k in (0, 1):
        a = torch.load(ref / f"fold{k}" / "state.pt", weights_only=True)
        b = torch.load(cut / f"fold{k}" / "state.pt", weights_only=True)
        assert a["epoch"] == b["epoch"] == 2
        assert all(torch.equal(a["model"][n], b["model"][n]) for n in a["model"])
    capsys.readouterr()

    # the runtime graphs, as the default's: mer predict runs them without torch, with the same outputs
    stem = ref / "fold0" / "best"
    assert main(["export", "--runtime", "--model", str(stem)]) == 0
    assert (ref / "fold0" / "best.embed.onnx").is_file() and (ref / "fold0" / "best.head.onnx").is_file()
    clip = next(synth_root.rglob("*.wav"))
    outs = {}
    for backend in ("onnx", "torch"):
        capsys.readouterr()
        assert main(["predict", str(clip), "--model", str(stem), "--backend", backend, "--format", "json",
                     "--quiet"]) == 0
        outs[backend] = json.loads(capsys.readouterr().out)
    a, b = (o[0] if isinstance(o, list) else o for o in (outs["onnx"], outs["torch"]))
    for key in ("valence", "arousal"):
        assert a[key] == pytest.approx(b[key], abs=1e-4)
    assert a["quadrant"] == b["quadrant"] and a.get("tags") and a.get("moods") is not None


@pytest.mark.parametrize("wide", [0, 12])
def test_student_steps_tags_and_teacher_heads(wide):
    student = create_model("student", feature=FeatureConfig(), width=8, depth=6, temporal=1, hidden=16, wide=wide,
                           tag_names=["a", "b", "c"], quadrant=True).eval()
    for frames in (32, 100, 1875, 3001):
        x = torch.rand(2, 1, 96, frames)
        seq, tags = student.embed(x, return_tags=True)
        assert seq.shape == (2, n_steps(frames, student.feature), 200) and tags.shape[-1] == 3
        out = student(x)
        assert out["static"].shape == (2, 2) and out["quadrant"].shape == (2, 4) and out["tags"].shape == (2, 3)
    caps = student.capabilities
    assert caps.step_embeddings and caps.pooled_head and caps.quadrant and not caps.frozen_backbone


@pytest.mark.parametrize("wide", [0, 12])
def test_student_windows_of_a_long_file_match_one_pass(wide):
    """Its time strides (10 frames; the full-band path's pooling the same) divide Inference's window
    grid, and its receptive field fits the context."""
    from mer.infer.inference import Inference

    torch.manual_seed(0)
    student = create_model("student", feature=FeatureConfig(), width=8, hidden=16, wide=wide).eval()
    x = np.random.default_rng(0).uniform(0, 3, (1, 96, 6300)).astype(np.float32)  # 100.8 s: 3 windows
    chunked, _ = Inference.from_module(student).embed(x)
    with torch.no_grad():
        whole = student.embed(torch.from_numpy(x)[None])[0].numpy()
    assert chunked.shape == whole.shape == (201, 200)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_a_graph_whose_code_pins_the_frames_is_refused_not_written():
    """torch.onnx.export falls back to the example's shape where the code fixes a dynamic dimension
    (the student's full-band pooling did, as a 1-D max pool, in torch 2.13): such a graph would
    reject every other clip length, so it is refused; the student's own 2-D pools keep it dynamic."""
    from mer.errors import ModelError
    from mer.infer.export import _Embed, _export

    class Pool1d(torch.nn.Module):  # the same maxima as the student's two 2-D pools
        def forward(self, w: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.max_pool1d(w.squeeze(2), 11, 10, 5).unsqueeze(2)

    student = create_model("student", feature=FeatureConfig(), width=8, hidden=16, wide=8).eval()
    x = torch.rand(1, 1, 96, 625)
    with torch.no_grad():
        ref = student.embed(x)
        pinned = create_model("student", feature=FeatureConfig(), width=8, hidden=16, wide=8).eval()
        pinned.load_state_dict(student.state_dict())
        pinned.wide_pool = Pool1d()
        assert torch.equal(pinned.embed(x), ref)
    frames = {3: torch.export.Dim("frames", min=64, max=1 << 22)}
    with pytest.raises(ModelError, match="fixes input dimension 3 at 625"):
        _export(_Embed(pinned), x, ["sequence"], frames, "here", "student")
    dims = _export(_Embed(student), x, ["sequence"], frames, "here", "student").model_proto.graph.input[0]
    assert dims.type.tensor_type.shape.dim[3].dim_param


def test_augment_is_reproducible_and_keeps_the_front_end_shape():
    rng = np.random.default_rng(0)
    feature = FeatureConfig()
    x = rng.uniform(0, 3, (1, 96, 500)).astype(np.float32)
    partner = rng.uniform(0, 3, (1, 96, 300)).astype(np.float32)
    seen = set()
    for seed in range(12):
        a, done = augment(x, partner, np.random.default_rng(seed), feature)
        b, again = augment(x, partner, np.random.default_rng(seed), feature)
        assert np.array_equal(a, b) and done == again and done
        assert a.dtype == np.float32 and a.shape[:2] == (1, 96) and np.isfinite(a).all() and (a >= 0).all()
        assert a.shape[-1] == 500 or "tempo" in done
        seen.update(done)
    assert seen == {"mix", "tilt", "pitch", "tempo"}


@pytest.mark.parametrize("flags, message", [
    (["--augment", "2"], "augmented copies are for --distil"),
    (["--distil", "default", "--model", "crnn"], "use --model student"),
    (["--distil", "default", "--model", "student", "--feature", "n_mels=48"], "drop --feature"),
    (["--distil", "nosuchteacher", "--model", "student"], "nosuchteacher"),
])
def test_distil_config_errors_are_one_line(tmp_path, synth_root, capsys, flags, message):
    code = main(["train", "--dataset", "folder", "--root", str(synth_root), "--out", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache"), "--quiet", *flags])
    err = capsys.readouterr().err.strip()
    assert code != 0 and message in err and len(err.splitlines()) == 1, err
    shutil.rmtree(tmp_path / "run", ignore_errors=True)
