"""Model cost: parameters, FLOPs and CPU time per 30 s of audio (for ``mer models``).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and
matrix products, 2 FLOPs per multiply-add) plus the recurrent layers, which that counter
does not see, computed analytically: per step and direction, ``2 * gates * (in * H + H * H)``
with 3 gates for a GRU and 4 for an LSTM. The front-end (STFT, mel) is not included.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from .base import MERModel


def _rnn_flops(module: nn.RNNBase, steps: int, batch: int) -> int:
    gates = {"GRU": 3, "LSTM": 4}.get(module.mode, 1)
    dirs = 2 if module.bidirectional else 1
    total, d_in = 0, module.input_size
    for _ in range(module.num_layers):
        total += 2 * gates * (d_in * module.hidden_size + module.hidden_size**2) * steps * dirs * batch
        d_in = module.hidden_size * dirs
    return total


def example_input(model: MERModel, seconds: float = 30.0, batch: int = 1) -> torch.Tensor:
    f = model.feature
    return torch.randn(batch, f.channels, f.n_bins, f.n_frames(int(seconds * f.sample_rate)))


def count_flops(model: MERModel, seconds: float = 30.0) -> int:
    """FLOPs of one forward pass on ``seconds`` of audio (batch 1)."""
    x = example_input(model, seconds)
    rnn_total = 0

    def hook(mod: nn.RNNBase, inputs, output) -> None:  # noqa: ANN001
        nonlocal rnn_total
        rnn_total += _rnn_flops(mod, inputs[0].shape[1], inputs[0].shape[0])

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.RNNBase)]
    try:
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return int(counter.get_total_flops()) + rnn_total


def cpu_time(model: MERModel, seconds: float = 30.0, repeats: int = 3) -> float:
    """Median wall time (s) of one forward pass on ``seconds`` of audio, after a warm-up."""
    x = example_input(model, seconds)
    times = []
    with torch.inference_mode():
        model(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
