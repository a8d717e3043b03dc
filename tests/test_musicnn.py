"""The musicnn port: matches the original TensorFlow model, tags real music plausibly, freezes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mer import ModelError
from mer.features import FeatureConfig, extract, features_from_file
from mer.models import create_model
from mer.synth import clip
from conftest import shared_path

REFERENCE = Path(__file__).parent / "data" / "musicnn_reference.json"


@pytest.mark.parametrize("source", ["msd", "mtt"])
def test_port_matches_the_original_tensorflow_outputs(source):
    """tools/convert_musicnn.py ran the original TF graph on this synthetic patch and stored its outputs."""
    ref = json.loads(REFERENCE.read_text())[source]
    x = extract(clip(0.6, 0.6, seconds=3.2, sr=16000, seed=0))[None, ..., :187]  # (1, 1, 96, 187), as the tool
    model = create_model("musicnn", source=source).eval()
    bb = model.backbone
    with torch.no_grad():
        h = bb["trunk"](torch.from_numpy(x))
        pen, logits = bb["backend"](torch.stack([h.amax(-1), h.mean(-1)], dim=-1).flatten(1))
    assert np.abs(torch.sigmoid(logits)[0].numpy() - ref["tags"]).max() < 1e-4
    assert np.abs(pen[0].numpy() - ref["penultimate"]).max() < 1e-3


def test_frozen_backbone_stays_frozen_and_fine_tuning_reaches_it():
    frozen = create_model("musicnn").train()
    assert not frozen.backbone.training and frozen.heads.training
    assert all(not p.requires_grad for p in frozen.backbone.parameters())
    tuned = create_model("musicnn", freeze=False).train()
    x = torch.randn(2, 1, 96, 200)
    out = tuned(x)
    (out["static"].sum() + out["dynamic"].sum()).backward()
    assert tuned.backbone["trunk"].timbral[0].weight.grad.abs().sum() > 0
    assert out["tags"].shape == (2, 50) and ((out["tags"] >= 0) & (out["tags"] <= 1)).all()


def test_musicnn_refuses_other_front_ends_and_sources():
    with pytest.raises(ModelError, match="default log-mel"):
        create_model("musicnn", feature=FeatureConfig.seed_stft())
    with pytest.raises(ModelError, match="choose one of msd, mtt"):
        create_model("musicnn", source="imagenet")


def test_tagger_ranks_plausible_tags_on_real_music():
    """Aggressive 4Q clips (Q2: angry, tense) read as metal/punk; calm ones (Q4) do not."""
    root = shared_path("4q-dev")
    model = create_model("musicnn").eval()
    heavy = [model.tag_names.index(t) for t in ("metal", "hard rock", "heavy metal", "punk")]

    def mean_tags(quadrant: str) -> np.ndarray:
        files = sorted((root / quadrant).glob("*.mp3"))[:6]
        with torch.no_grad():
            return np.mean([model(torch.from_numpy(features_from_file(f))[None])["tags"][0].numpy() for f in files], 0)

    q2, q4 = mean_tags("Q2"), mean_tags("Q4")
    assert model.tag_names[int(np.argmax(q2))] in {"rock", "metal", "punk", "hard rock", "heavy metal"}
    assert q2[heavy].sum() > 3 * q4[heavy].sum()
