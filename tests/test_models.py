"""The model zoo: output contract, gradients, checkpoints, determinism, layer sizes, cost."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mer import ModelError
from mer.models.checkpoint import load_checkpoint, save_checkpoint
from mer.features import FeatureConfig
from mer.models import create_model, list_models, n_steps, step_times, time_to_step
from mer.models.profile import count_flops

SMALL = {"cnn": {"channels": (8, 8, 8, 8, 8)}, "dense": {"hidden": (16, 8, 8, 4), "frames": 32}}  # fast variants


def _x(seconds: float, feature: FeatureConfig = FeatureConfig(), batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, feature.channels, feature.n_bins, feature.n_frames(int(seconds * feature.sample_rate)))


def test_registry_lists_the_seed_zoo():
    assert {"dense", "cnn", "crnn", "crnn_bilstm", "crnn_gru3", "crnn_cbam", "mobile_crnn"} <= set(list_models())
    with pytest.raises(ModelError, match="choose one of .*crnn"):
        create_model("resnet")
    with pytest.raises(ModelError, match="unknown option .nonsense.; valid --model-arg names: channels"):
        create_model("crnn", nonsense=1)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("seconds", [0.3, 3.0, 12.7])
def test_output_contract(name, seconds):
    torch.manual_seed(0)
    model = create_model(name, **SMALL.get(name, {})).eval()
    x = _x(seconds)
    with torch.no_grad():
        out = model(x)
    n = n_steps(x.shape[-1], model.feature)
    assert n == max(1, int(seconds * 2))
    assert out["static"].shape == (2, 2) and out["dynamic"].shape == (2, n, 2)
    assert all(torch.isfinite(v).all() for v in out.values())


@pytest.mark.parametrize("name", list_models())
def test_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = create_model(name, **SMALL.get(name, {})).train()
    out = model(_x(4.0))
    (out["static"].sum() + out["dynamic"].sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert not missing


@pytest.mark.parametrize("name", list_models())
def test_save_reload_identical_and_seeded_init(tmp_path, name):
    torch.manual_seed(1)
    a = create_model(name, **SMALL.get(name, {})).eval()
    torch.manual_seed(1)
    b = create_model(name, **SMALL.get(name, {})).eval()
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    save_checkpoint(a, tmp_path / "ckpt", metrics={"note": "test"})
    c, meta = load_checkpoint(tmp_path / "ckpt.safetensors")
    assert meta.model == name and meta.extra["metrics"] == {"note": "test"} and meta.versions["torch"]
    x = _x(5.0)
    with torch.no_grad():
        oa, oc = a(x), c(x)
    for k in ("static", "dynamic"):
        assert torch.equal(oa[k], oc[k])


def test_models_take_the_seed_stft_front_end_and_raw_audio():
    feature = FeatureConfig.seed_stft()
    model = create_model("mobile_crnn", feature=feature).eval()
    with torch.no_grad():
        out = model.from_audio(torch.randn(1, 2, 44100 * 3))
    assert out["dynamic"].shape == (1, 6, 2)


def _convs(model: nn.Module) -> list[tuple[int, int, tuple[int, int]]]:
    return [(m.in_channels, m.out_channels, m.kernel_size) for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_seed_layer_sizes():
    dense = create_model("dense", feature=FeatureConfig.seed_stft())
    linears = [(m.in_features, m.out_features) for m in dense.trunk if isinstance(m, nn.Linear)]
    assert linears == [(512 * 129 * 2, 512), (512, 256), (256, 128), (128, 64)]
    assert dense.static_head.out_features == 2
    assert any(isinstance(m, nn.ReLU) for m in dense.trunk)
    cnn = create_model("cnn", norm=False)
    widths = [64, 128, 256, 512, 1024]
    expected = []
    c_in = 1
    for w in widths:
        expected += [(c_in, w, (3, 3)), (w, w, (1, 1))]
        c_in = w
    assert _convs(cnn) == expected
    assert sum(isinstance(m, nn.LeakyReLU) for m in cnn.modules()) == 10
    assert not any(isinstance(m, nn.BatchNorm2d) for m in cnn.modules())
    rnn = {n: create_model(n).rnn.rnn for n in ("crnn", "crnn_bilstm", "crnn_gru3", "crnn_cbam", "mobile_crnn")}
    assert (rnn["crnn"].mode, rnn["crnn"].num_layers, rnn["crnn"].bidirectional) == ("GRU", 1, False)
    assert (rnn["crnn_bilstm"].mode, rnn["crnn_bilstm"].num_layers, rnn["crnn_bilstm"].bidirectional) == ("LSTM", 1, True)
    assert (rnn["crnn_gru3"].mode, rnn["crnn_gru3"].num_layers) == ("GRU", 3)
    from mer.models.blocks import CBAM
    assert sum(isinstance(m, CBAM) for m in create_model("crnn_cbam").modules()) == 4
    mobile = _convs(create_model("mobile_crnn"))
    assert any(k == (1, 1) for _, _, k in mobile)
    assert any(m.groups > 1 for m in create_model("mobile_crnn").modules() if isinstance(m, nn.Conv2d))


def test_mobile_crnn_costs_at_most_a_third_of_crnn():
    assert count_flops(create_model("mobile_crnn")) <= count_flops(create_model("crnn")) / 3


def test_time_grid():
    assert step_times(3).tolist() == [0.5, 1.0, 1.5]
    assert time_to_step([15.0, 45.0]).tolist() == [29, 89]


def test_bad_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "missing")
    (tmp_path / "x.json").write_text('{"model": "crnn", "feature": {}}')
    (tmp_path / "x.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelError, match="not a valid mer checkpoint"):
        load_checkpoint(tmp_path / "x")


@pytest.mark.slow
def test_cli_models_table():
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-m", "mer", "models", "--no-time"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    bundled, zoo = res.stdout.split("Architectures")
    rows = [line for line in zoo.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert {r.split("|")[1].strip() for r in rows} == set(list_models())
    assert "| default | 3 | musicnn |" in bundled and "| fast |" in bundled


@pytest.mark.parametrize("hidden, stats", [(0, False), (16, False), (0, True), (16, True)])
def test_va_heads_options(hidden, stats):
    from mer.models.blocks import VAHeads

    heads = VAHeads(8, hidden=hidden, dropout=0.2, stats=stats)
    for t, n in [(12, 5), (1, 1), (3, 6)]:  # pooling, a one-step clip (sd 0), interpolation
        seq = torch.randn(2, t, 8, requires_grad=True)
        out = heads(seq, n)
        assert out["static"].shape == (2, 2) and out["dynamic"].shape == (2, n, 2)
        (out["static"].sum() + out["dynamic"].sum()).backward()
        assert torch.isfinite(seq.grad).all()  # no NaN from the sd of a single step
    if not hidden:
        assert set(heads.state_dict()) == {"static.weight", "static.bias", "dynamic.weight", "dynamic.bias"}
        assert heads.static.in_features == (16 if stats else 8)


def test_embedding_cache_is_shared_by_runs_that_differ_in_their_heads(tmp_path):
    import numpy as np

    from mer.datasets.items import Item
    from mer.train.data import embed_items

    x = np.random.default_rng(0).random((1, 96, 200), dtype=np.float32) * 3
    item = Item("a", x, np.zeros(2), None, 1, None)
    runs = [create_model("musicnn", **kw) for kw in ({}, {"head_hidden": 16, "head_stats": True},
                                                    {"freeze": False}, {"context": 2.0}, {"source": "mtt"})]
    for m in runs:
        embed_items(m, [item], cache_dir=str(tmp_path), progress=False)
    folders = sorted(p.name for p in (tmp_path / "embeddings").iterdir())
    assert len(folders) == 3  # heads and freeze share the first; context and source get their own
    first = embed_items(runs[0], [item], cache_dir=str(tmp_path), progress=False)[0].x
    with torch.no_grad():
        np.testing.assert_allclose(first, runs[1].embed(torch.from_numpy(x)[None])[0].numpy(), atol=1e-5)


def test_corrupt_swapped_or_nan_embedding_cache_entries_are_recomputed(tmp_path):
    import numpy as np

    from mer import MERWarning
    from mer.datasets.items import Item
    from mer.train.data import embed_items

    rng = np.random.default_rng(1)
    items = [Item(n, rng.random((1, 96, 200), dtype=np.float32) * 3, np.zeros(2), None, 1, None) for n in "ab"]
    model = create_model("musicnn")
    good = [it.x for it in embed_items(model, items, cache_dir=str(tmp_path), progress=False)]
    entries = sorted((tmp_path / "embeddings").rglob("*.npz"))
    by_source = {str(np.load(e)["source"]): e for e in entries}
    import hashlib

    a, b = (by_source[hashlib.sha1(np.ascontiguousarray(it.x).tobytes()).hexdigest()] for it in items)
    a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
    for damage in ("swap", "empty", "nan", "flip"):
        if damage == "swap":
            a.write_bytes(b_bytes)
        elif damage == "empty":
            a.write_bytes(b"")
        else:  # a's own entry, its embedding changed: NaN with a matching checksum, or one bit-flip-like change
            a.write_bytes(a_bytes)
            z = {k: v.copy() for k, v in np.load(a).items()}
            z["embedding"][0, 0] = np.nan if damage == "nan" else z["embedding"][0, 0] + 1.0
            if damage == "nan":
                z["sha1"] = np.array(hashlib.sha1(np.ascontiguousarray(z["embedding"]).tobytes()).hexdigest())
            with open(a, "wb") as fh:
                np.savez(fh, **z)
        with pytest.warns(MERWarning, match="corrupt or mismatched embedding cache entry"):
            again = embed_items(model, items, cache_dir=str(tmp_path), progress=False)
        np.testing.assert_allclose(again[0].x, good[0], atol=1e-6)
        a.write_bytes(a_bytes)
