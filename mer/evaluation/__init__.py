"""Scoring predictions against labels (torch-free) and ``mer evaluate``.

- :mod:`mer.evaluation.scores`: :func:`score` (static, dynamic and quadrant metrics the way
  the literature reports them), :func:`constant_baseline`, :func:`format_report`;
- :mod:`mer.evaluation.evaluate`: :func:`evaluate` -- a model or a run folder on a dataset,
  through the one :class:`mer.infer.Inference`, refusing to score a model on clips it was
  trained on.
"""

from .scores import DIMS, constant_baseline, format_report, headline, score

__all__ = ["DIMS", "constant_baseline", "format_report", "headline", "score"]
