"""Detect the valence/arousal swap between the DEAM and emoMusic releases.

For the 744 songs the two releases share (DEAM ids 2-1000), DEAM's static ``valence_mean``
equals emoMusic's ``mean_arousal`` and the reverse for about 99% of songs: one release
swapped the two dimensions for that subset. :func:`compare_static` counts, over the shared
songs, how many agree as labelled and how many agree only when swapped, so a user never
mixes the two silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Dataset


@dataclass
class SwapReport:
    shared: int  # songs present in both with static labels
    same: int  # valence == valence and arousal == arousal (within tol)
    swapped: int  # valence == arousal and arousal == valence, but not the same
    neither: int

    @property
    def verdict(self) -> str:
        if self.shared == 0:
            return "no shared songs: nothing to compare"
        if self.swapped > 0.5 * self.shared:
            return (f"SWAPPED: for {self.swapped} of {self.shared} shared songs ({100 * self.swapped / self.shared:.1f}%) "
                    "one release's valence is the other's arousal; do not mix their labels without swapping one")
        return f"consistent: {self.same} of {self.shared} shared songs agree as labelled"


def compare_static(a: dict[str, tuple[float, float]], b: dict[str, tuple[float, float]], tol: float = 0.02) -> SwapReport:
    """Compare ``{id: (valence, arousal)}`` maps (same scale) over their shared ids."""
    same = swapped = neither = 0
    shared = sorted(set(a) & set(b))
    for k in shared:
        (va, aa), (vb, ab) = a[k], b[k]
        direct = abs(va - vb) <= tol and abs(aa - ab) <= tol
        crossed = abs(va - ab) <= tol and abs(aa - vb) <= tol
        if direct:
            same += 1
        elif crossed:
            swapped += 1
        else:
            neither += 1
    return SwapReport(len(shared), same, swapped, neither)


def compare_datasets(first: Dataset, second: Dataset, tol: float = 0.02) -> SwapReport:
    """:func:`compare_static` on two loaded datasets' canonical static labels."""
    def labels(ds: Dataset) -> dict[str, tuple[float, float]]:
        return {t.track_id: (t.valence, t.arousal) for t in ds.index.values()
                if t.valence is not None and t.arousal is not None}
    return compare_static(labels(first), labels(second), tol)
