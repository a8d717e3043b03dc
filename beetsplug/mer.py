"""beets plugin: mer's valence, arousal and mood as flexible attributes (``pip install 'mer-toolkit[beets]'``).

Enable it in beets' config (``plugins: mer``), then::

    beet mer [QUERY]              # predict the items missing mer's fields, or predicted by another model
    beet mer -f artist:Nina       # predict again anyway
    beet mer -w                   # also write them into the files (mer's safe writer: mer.tags.write)
    beet ls mood_relaxed:0.7..    # the calmest songs;  beet ls -f '$title $valence' valence:..0.3

Attributes: ``valence`` and ``arousal`` (0-1, 0.5 neutral), ``mood_happy``, ``mood_aggressive``,
``mood_sad``, ``mood_relaxed`` (quadrant probabilities, acousticbrainz's names), ``mer_quadrant``
(Q1..Q4), ``mer_model``, ``mer_model_version``, ``mer_weights_sha1``, and one per mood word of
the default (``mer_mood_gentle``, ``mer_mood_calm_peaceful``: the probability that AllMusic's
editors would give the song that word, 0-1): the fields of :mod:`mer.tags`, lower case, same
scales (``beet ls mer_mood_dreamy:0.3..``). They are also registered as media fields, so
``beet import`` reads them from files ``mer tag`` wrote (and ``beet write`` writes them back, with
the same three decimals), and such items are not predicted again.

Writing: ``beet mer -w`` writes through mer's safe writer; ``beet write`` writes the attributes
through beets and then the plugin adds mer's MOOD value (beets has no mood field), so every path
leaves the file with what ``mer tag`` writes. Beside beets' deprecated acousticbrainz plugin the
four ``mood_*`` attributes take its type (a warning says so) instead of stopping beets.

Config (``mer:`` section): ``auto`` (default no: predict the items of each ``beet import``),
``model`` (default ``default``), ``workers`` (0: one per core), ``write`` (default: beets'
``import.write``, as for ``-w``/``-W``), ``trust_remote_code`` (default no: an ``hf:`` run whose
backbone folder ships its own Python code, MERT, is refused; set it yes only if you trust that code).
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from beets import config as beets_config
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


def _fields() -> tuple[tags.TagField, ...]:
    """mer's fields: the fixed ones, and one per mood word of the default model
    (``mer_mood_calm_peaceful``: the probability of "calm/peaceful", 0-1)."""
    from mer.bundle import Bundle

    try:
        words = Bundle.resolve("default").mood_words
    except MERError:
        words = []
    return tags.FIELDS + tuple(tags.TagField(tags.word_key(w), "moods", "real", f"probability of the mood word {w!r}")
                               for w in words)


FIELDS = _fields()


#: the attributes beets' (deprecated) acousticbrainz plugin declares too, with a type of its own
SHARED_WITH_ACOUSTICBRAINZ = ("mood_happy", "mood_aggressive", "mood_sad", "mood_relaxed")


def _name(item: Any) -> str:
    """How a log line names an item: ``Artist - Title``, else its file name (untagged files)."""
    artist, title = (item.get("artist") or "").strip(), (item.get("title") or "").strip()
    if title:
        return f"{artist} - {title}" if artist else title
    return os.path.basename(os.fsdecode(item.path))


class MerPlugin(BeetsPlugin):
    """``beet mer``, the optional import hook and the MOOD written with every ``beet write``;
    see the module docstring."""

    item_types = {f.attr: types.NullFloat(tags.DECIMALS) if f.kind == "real" else types.STRING
                  for f in FIELDS}

    def __init__(self) -> None:
        super().__init__()
        self.config.add({"auto": False, "model": "default", "workers": 0, "write": None,
                         "trust_remote_code": False})
        from beets.library import Item

        for f in FIELDS:
            if not hasattr(MediaFile, f.attr):  # once per process, however many plugin instances
                self.add_media_field(f.attr, _media_field(f))
            # `beet write` compares only these with the file: without them it never writes mer's fields
            Item._media_tag_fields.add(f.attr)
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]
        self.register_listener("after_write", self.after_write)
        if "acousticbrainz" in beets_config["plugins"].as_str_seq():
            # both declare these attributes; beets stops on two types for one name, so mer takes its
            # type (they still hold 0-1 probabilities, shown with its 6 decimals)
            self.item_types = {k: v for k, v in type(self).item_types.items() if k not in SHARED_WITH_ACOUSTICBRAINZ}
            self._log.warning("beets' acousticbrainz plugin is enabled too: both fill {}; the last to run wins "
                              "(AcousticBrainz closed in 2022: remove acousticbrainz from `plugins` to silence this)",
                              ", ".join(SHARED_WITH_ACOUSTICBRAINZ))

    def after_write(self, item: Any, path: bytes) -> None:
        """After beets wrote ``item``'s fields into its file (``beet write``, ``beet import`` with
        ``write: yes``, ``beet modify``), add what beets' media fields cannot: mer's MOOD value,
        through ``mer tag``'s safe writer. The file then holds exactly what ``mer tag`` writes."""
        found = {f.key: item.get(f.attr) for f in FIELDS}
        if found.get("VALENCE") is None or not found.get("MER_QUADRANT"):
            return
        try:
            tags.write(os.fsdecode(path), tags.Emotion.from_tags(found))
        except MERError as exc:
            self._log.warning("mood not written: {}", exc)

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
        from mer.bundle import Bundle
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
            for key in dict.fromkeys([*(f.key for f in FIELDS), *values]):
                if key in values:
                    item[key.lower()] = values[key]
                elif item.get(key.lower()) is not None:  # e.g. probabilities an older model had
                    del item[key.lower()]
            item.store()
            self._log.info("{}: {} (valence {:.3f}, arousal {:.3f})", _name(item), emotion.mood, values["VALENCE"],
                           values["AROUSAL"])
            if write:
                try:
                    tags.write(os.fsdecode(item.path), emotion)
                except MERError as exc:  # a read-only file, a format without tags: say so, go on
                    self._log.warning("not written: {}", exc)
