"""Training (torch): ``mer train`` and ``mer benchmark``.

- :mod:`~mer.train.config`: :class:`TrainConfig` (defaults < YAML < flags) and its vocabularies;
- :mod:`~mer.train.losses`: MAE / MSE / CCC sums, the task's loss;
- :mod:`~mer.train.distributed`: torchrun process groups, devices, seeding;
- :mod:`~mer.train.data`: training crops and cached backbone embeddings;
- :mod:`~mer.train.fold`: one fold (epochs, early stopping, resume, validation);
- :mod:`~mer.train.run`: the whole run (split, features, folds, summary);
- :mod:`~mer.train.reports`: log, curves and summary tables;
- :mod:`~mer.train.benchmark`: a grid of runs, one table.

Import the submodule you need (this package imports none of them, so ``import mer.train.config``
stays light).
"""
