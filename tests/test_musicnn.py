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
from mer.models.musicnn import pool_windows
from mer.synth import clip

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


def test_tagger_ranks_plausible_tags_on_real_music(shared):
    """Aggressive 4Q clips (Q2: angry, tense) read as metal/punk; calm ones (Q4) do not."""
    root = shared("4q-dev")
    model = create_model("musicnn").eval()
    heavy = [model.tag_names.index(t) for t in ("metal", "hard rock", "heavy metal", "punk")]

    def mean_tags(quadrant: str) -> np.ndarray:
        files = sorted((root / quadrant).glob("*.mp3"))[:6]
        with torch.no_grad():
            return np.mean([model(torch.from_numpy(features_from_file(f))[None])["tags"][0].numpy() for f in files], 0)

    q2, q4 = mean_tags("Q2"), mean_tags("Q4")
    assert model.tag_names[int(np.argmax(q2))] in {"rock", "metal", "punk", "hard rock", "heavy metal"}
    assert q2[heavy].sum() > 3 * q4[heavy].sum()


def _layers_output(trunk: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The trunk through its original layers (what train mode runs), in eval-mode statistics."""
    fast, trunk.fast = trunk.fast, None
    try:
        with torch.no_grad():
            return trunk(x)
    finally:
        trunk.fast = fast


@pytest.mark.parametrize("source", ["msd", "mtt", None])
def test_eval_mode_fast_front_end_equals_the_original_layers(source):
    """FastFront (live filters only, batch norm after the max) gives the layers' outputs."""
    torch.manual_seed(0)
    model = create_model("musicnn", source=source or "msd", pretrained=source is not None)
    trunk = model.backbone["trunk"]
    if source is None:  # random weights with dead (all-zero) filters, whose constants reach the mid-end
        with torch.no_grad():
            for conv in [*trunk.timbral, *trunk.temporal]:
                conv.weight[::2] = 0
                conv.bias.uniform_(0.5, 1.0)
    model.eval()
    assert trunk.fast is not None and len(trunk.fast.branches) == 5
    if source == "msd":  # most MSD filters are zero: only the live ones are convolved
        assert [branch.weight.shape[0] for branch in trunk.fast.branches] == [23, 14, 3, 7, 17]
    x = torch.from_numpy(extract(clip(0.3, 0.7, seconds=5.0, sr=16000, seed=3)))[None]
    with torch.no_grad():
        fast = trunk(x)
    ref = _layers_output(trunk, x)
    assert fast.shape == ref.shape == (1, 753, x.shape[-1])
    assert (fast - ref).abs().max() <= 1e-5 * ref.abs().max()
    centres = torch.tensor([0, 40, x.shape[-1] - 1])  # pooling the varying channels only, constants put back
    with torch.no_grad():
        varying = trunk(x, varying=True)
    assert varying.shape == (1, len(trunk.fast.varying), x.shape[-1]) and torch.equal(varying, fast[:, trunk.fast.varying])
    assert torch.allclose(trunk.fast.pool(varying, centres, 90), pool_windows(ref, centres, 90), rtol=1e-5, atol=1e-4)
    if source is None:
        assert trunk.fast.mid_dead.abs().max() > 1e-2  # the dead channels' share is not negligible here
        edges = [0, 1, 2, -3, -2, -1]  # where the mid-end's zero padding drops taps
        assert torch.allclose(fast[..., edges], ref[..., edges], rtol=1e-5, atol=1e-5)


def test_fast_front_end_follows_new_weights_and_train_mode():
    trunk = create_model("musicnn", source="msd").backbone["trunk"].eval()
    x = torch.from_numpy(extract(clip(-0.4, 0.2, seconds=3.0, sr=16000, seed=4)))[None]
    other = create_model("musicnn", source="mtt").backbone["trunk"].state_dict()
    trunk.load_state_dict(other)  # in eval mode: the fast form is rebuilt from the loaded weights
    with torch.no_grad():
        fast = trunk(x)
    ref = _layers_output(trunk, x)
    assert (fast - ref).abs().max() <= 1e-5 * ref.abs().max()
    assert trunk.train().fast is None and trunk.eval().fast is not None
    assert not any("fast" in key for key in trunk.state_dict())  # checkpoints keep the original layers


def test_pooled_windows_equal_a_direct_max_and_mean():
    h = torch.randn(2, 5, 40)
    centres, half = torch.tensor([0, 3, 20, 39]), 6
    out = pool_windows(h, centres, half)
    for i, c in enumerate(centres.tolist()):
        win = h[..., max(0, c - half):c + half + 1]  # frames outside the clip left out
        expected = torch.stack([win.amax(-1), win.mean(-1)], dim=-1).flatten(1)
        assert torch.allclose(out[:, i], expected, atol=1e-6)
