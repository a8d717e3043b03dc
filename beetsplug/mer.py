"""beets plugin: mer's valence, arousal and mood as flexible attributes (``pip install 'mer-toolkit[beets]'``).

Enable it in beets' config (``plugins: mer``), then::

    beet mer [QUERY]              # predict the items missing mer's fields, or predicted by another model
    beet mer -f artist:Nina       # predict again anyway
    beet mer -w                   # also write them into the files (mer's safe writer: mer.tags.write)
    beet ls mood_relaxed:0.7..    # the calmest songs;  beet ls -f '$title $valence' valence:..0.3

Attributes: ``valence`` and ``arousal`` (0-1, 0.5 neutral), ``mood_happy``, ``mood_aggressive``,
``mood_sad``, ``mood_relaxed`` (quadrant probabilities, acousticbrainz's names), ``mer_quadrant``
(Q1..Q4), ``mer_model``, ``mer_model_version``, ``mer_weights_sha1``: the fields of
:mod:`mer.tags`, lower case, same scales. They are also registered as media fields, so
``beet import`` reads them from files ``mer tag`` wrote (and ``beet write`` writes them back, with
the same three decimals), and such items are not predicted again.

Config (``mer:`` section): ``auto`` (default no: predict the items of each ``beet import``),
``model`` (default ``default``), ``workers`` (0: one per core), ``write`` (default: beets'
``import.write``, as for ``-w``/``-W``), ``trust_remote_code`` (default no: an ``hf:`` run whose
backbone folder ships its own Python code, MERT, is refused; set it yes only if you trust that code).
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin
from mediafile import MediaField, MediaFile, MP3DescStorageStyle, MP4StorageStyle, StorageStyle

from mer import tags
from mer.errors import MERError


def _media_field(f: tags.TagField) -> MediaField:
    """The beets media field reading and writing ``f`` where ``mer tag`` does (TXXX, Vorbis, MP4 atom)."""
    places = {"float_places": tags.DECIMALS} if f.kind == "real" else {}
    return MediaField(MP3DescStorageStyle(f.key, **places), MP4StorageStyle(tags.MP4_PREFIX + f.key, **places),
                      StorageStyle(f.key, **places), out_type=float if f.kind == "real" else str)


class MerPlugin(BeetsPlugin):
    """``beet mer`` and the optional import hook; see the module docstring."""

    item_types = {f.attr: types.NullFloat(tags.DECIMALS) if f.kind == "real" else types.STRING
                  for f in tags.FIELDS}

    def __init__(self) -> None:
        super().__init__()
        self.config.add({"auto": False, "model": "default", "workers": 0, "write": None,
                         "trust_remote_code": False})
        for f in tags.FIELDS:
            if not hasattr(MediaFile, f.attr):  # once per process, however many plugin instances
                self.add_media_field(f.attr, _media_field(f))
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("mer", help="predict valence, arousal and mood with mer")
        cmd.parser.add_option("-f", "--force", action="store_true", help="predict again items that have them")
        cmd.parser.add_option("-m", "--model", help="mer model (default: the config's, else default)")
        cmd.parser.add_option("-j", "--workers", type="int", help="worker processes (0: one per core)")
        cmd.parser.add_option("-w", "--write", action="store_true", dest="write", default=None,
                              help="also write the fields into the files' tags")
        cmd.parser.add_option("-W", "--nowrite", action="store_false", dest="write", help="do not write tags")
        cmd.func = self.command
        return [cmd]

    def command(self, lib: Any, opts: Any, args: list[str]) -> None:
        self.predict(lib.items(args), model=opts.model, workers=opts.workers, force=opts.force,
                     write=ui.should_write(opts.write if opts.write is not None else self.config["write"].get()))

    def imported(self, session: Any, task: Any) -> None:
        self.predict(task.imported_items(), write=ui.should_write(self.config["write"].get()))

    def predict(self, items: Iterable[Any], model: str | None = None, workers: int | None = None,
                force: bool = False, write: bool = False) -> None:
        """Fill mer's attributes of ``items`` that lack them or were predicted by another model."""
        from mer.hub import Bundle
        from mer.infer.predictor import run_batch

        try:
            bundle = Bundle.resolve(model or self.config["model"].as_str(),
                                    trust_remote_code=self.config["trust_remote_code"].get(bool))
        except MERError as exc:
            raise ui.UserError(f"mer: {exc}") from None
        items = list(items)
        todo = [i for i in items if force or not tags.same_model({f.key: i.get(f.attr) for f in tags.FIELDS},
                                                                 bundle.name, bundle.version, bundle.digest)]
        self._log.info("{} of {} items to predict with {} (version {})", len(todo), len(items), bundle.name,
                       bundle.version)
        paths = [os.fsdecode(i.path) for i in todo]
        n = workers if workers is not None else self.config["workers"].get(int)
        results = run_batch(bundle, paths, workers=n)
        try:
            first = next(results, None)  # the model loads here: a refusal is one line, not a traceback
        except MERError as exc:
            raise ui.UserError(f"mer: {exc} (in beets: set `mer: trust_remote_code: yes` instead of the flag)"
                               if "--trust-remote-code" in str(exc) else f"mer: {exc}") from None
        if first is None:
            return
        import itertools

        for item, res in zip(todo, itertools.chain([first], results)):
            if res.prediction is None:
                self._log.error("{}", res.error)
                continue
            emotion = tags.Emotion.from_prediction(res.prediction)
            values = emotion.values()
            for f in tags.FIELDS:
                if f.key in values:
                    item[f.attr] = values[f.key]
                elif item.get(f.attr) is not None:  # e.g. probabilities an older model had
                    del item[f.attr]
            item.store()
            self._log.info("{}: {} (valence {:.3f}, arousal {:.3f})", item, emotion.mood, values["VALENCE"],
                           values["AROUSAL"])
            if write:
                try:
                    tags.write(os.fsdecode(item.path), emotion)
                except MERError as exc:  # a read-only file, a format without tags: say so, go on
                    self._log.warning("not written: {}", exc)
