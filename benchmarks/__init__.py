"""The scripts and configs behind the figures in README.md and docs/benchmarks.md.

Run every script from the repository root as a module, with the data root (the folder that
holds ``4q-dev/``, ``lexicons/``, ``emomusic-mini/``, ``pmemo-samples/``, ...)::

    python -m benchmarks.NAME --data ../shared/data [options]     # --help for each one's options

``--data`` defaults to ``$MER_DATA`` when set, else ``../shared/data`` beside the repository
(``benchmarks/_data.py``, shared by all scripts); scripts that read one folder of clips also take
``--clips DIR`` (default ``DATA/4q-dev``).

Speed and scale (no train extra needed unless noted):

- ``audio_features``: decode + resample + log-mel throughput, mer's pipeline against librosa's;
- ``predict``: ``mer predict`` as a user runs it: batch throughput, cold start, peak memory;
- ``library``: ``mer index`` throughput, database size, ``mer search`` latency on 1M songs;
- ``index_scaling``: ``mer index`` on 1 and 2 workers, locally and on Ray (the ray extra);
- ``loudness``: how much a model's output moves when only the playback level changes;
- ``curves``: the 2 Hz curve against listeners' per-second labels, beside naive curves;
- ``serve_batch``: ``mer serve``'s page under a real batch (Playwright and Chromium).

The #14 experiments on the default's quadrant probe, each scored with the default's repeated
nested protocol (train extra; shared code in ``nested4q``): ``mood_words``, ``augment_4q``,
``tonal_4q`` (also librosa), ``heads_4q``, ``robust_4q``, ``fusion_4q``, ``finetune_4q``; and
``distil_4q`` (#41): students distilled from the default (``mer train --distil``) on the default's
outer folds, the probe refit on their embeddings beside the teacher's.

Hostile-input probes: ``hostile_files`` and ``hostile_serve`` (their table: ``cases``), e.g.
``python -m benchmarks.hostile_files``; they make their own inputs and need no ``--data``.

YAML configs, run with ``mer benchmark`` / ``mer train`` from the repository root (their
``root`` and ``lexicon`` paths are ``../shared/data/...``, relative to the working directory;
``mer benchmark`` has no option to move them, so for data elsewhere copy the YAML and edit
them): ``nested_4q.yaml`` (the bundled default and its nested estimate), ``nested_4q_pool.yaml``,
``seed_zoo.yaml`` (the research notebooks' experiments) and ``fast.yaml`` (the bundled fast model).
"""
