"""Checkpoint metadata as a type (mer.meta): round trips, unknown keys kept, old files read,
capabilities declared by the models themselves and saved with them."""

from __future__ import annotations

import json

import pytest

from mer.bundle import Bundle
from mer.meta import FORMAT, Capabilities, ModelMeta


def test_round_trip_keeps_unknown_keys_and_reads_attributes():
    d = {"format": FORMAT, "model": "cnn", "feature": {"kind": "logmel"}, "model_args": {"channels": [4]},
         "dataset": "deam", "fold": 3, "training": {"ids": ["1"]}, "versions": {"mer": "9.9"},
         "capabilities": {"step_embeddings": False, "quadrant": True, "frozen_backbone": False,
                          "window_seconds": None, "from_the_future": 1},
         "a_key_from_a_newer_mer": {"x": [1, 2]}}
    meta = ModelMeta.from_dict(d)
    assert (meta.model, meta.dataset, meta.fold, meta.version) == ("cnn", "deam", 3, "9.9")
    assert meta.capabilities == Capabilities(quadrant=True)
    out = meta.to_dict()
    assert out["a_key_from_a_newer_mer"] == {"x": [1, 2]} and ModelMeta.from_dict(out) == meta
    assert json.loads(json.dumps(out)) == out


@pytest.mark.parametrize("args, caps", [
    ({"quadrant": True, "source": "msd"}, Capabilities(step_embeddings=True, quadrant=True, frozen_backbone=True,
                                                       pooled_head=True)),
    ({"freeze": False}, Capabilities(step_embeddings=True, frozen_backbone=False, pooled_head=True)),
])
def test_format_1_files_get_their_capabilities_inferred(args, caps):
    old = {"format": "mer-checkpoint/1", "model": "musicnn", "model_args": args, "feature": {}}
    assert ModelMeta.from_dict(old).capabilities == caps
    crnn = ModelMeta.from_dict({"format": "mer-checkpoint/1", "model": "crnn", "feature": {}})
    assert crnn.capabilities == Capabilities()


def test_bundled_models_declare_per_step_embeddings():
    default = Bundle.resolve("default").meta
    assert default.capabilities.step_embeddings and default.capabilities.quadrant


def test_saved_checkpoints_carry_the_models_own_capabilities(tmp_path):
    pytest.importorskip("torch")
    from mer.models import create_model
    from mer.models.checkpoint import load_checkpoint, save_checkpoint

    model = create_model("musicnn", pretrained=False, quadrant=True)
    save_checkpoint(model, tmp_path / "m", dataset="4q", note="kept")
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["format"] == FORMAT and doc["note"] == "kept"
    assert doc["capabilities"] == model.capabilities.to_dict()
    assert Bundle.resolve(tmp_path / "m").meta.capabilities == Capabilities(step_embeddings=True, quadrant=True,
                                                                            frozen_backbone=True, window_seconds=3.0,
                                                                            pooled_head=True)
    cnn = create_model("cnn", channels=[4, 4, 4, 4, 4])
    save_checkpoint(cnn, tmp_path / "c")
    assert Bundle.resolve(tmp_path / "c").meta.capabilities == Capabilities()
    loaded, meta = load_checkpoint(tmp_path / "c")
    assert meta.capabilities == Capabilities()  # one read, one type
