"""RAVDESS (Livingstone & Russo 2018), its song part: 1,012 sung recordings, emotion in the file name.

Release layout (Zenodo record 10.5281/zenodo.1188976, ``Audio_Song_Actors_01-24.zip``; the
speech part is ``Audio_Speech_Actors_01-24.zip``; paths relative to ``--root``)::

    Actor_01/03-02-01-01-01-01-01.wav ... Actor_24/...     16 bit, 48 kHz wav

Both zips unpack to ``Actor_NN/`` folders, so they may share one root; files are found
anywhere below it (the Kaggle mirrors add one folder level). Each name is seven two-digit
fields (the Zenodo description and Livingstone & Russo 2018, PLoS ONE 13(5): e0196391)::

    modality-vocal channel-emotion-intensity-statement-repetition-actor.wav
    03 = audio-only; vocal channel 01 speech, 02 song; emotion 01 neutral, 02 calm,
    03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised (07/08 speech only);
    intensity 01 normal, 02 strong (none for neutral); statement 01 "Kids are talking by the
    door", 02 "Dogs are sitting by the door"; repetition 01/02; actor 01-24 (odd male, even female)

The song part has no files for Actor_18 (Zenodo: "there are no song files for Actor_18"), so
it holds 23 actors x 44 = 1,012 files; the speech part 24 x 60 = 1,440.

Labels: the emotion is mapped to a Russell quadrant (``quadrants=``, overridable, e.g.
``--dataset-option quadrants=happy=Q1,calm=Q4``): happy Q1, angry and fearful Q2, sad Q3,
calm Q4; disgust and surprised (speech only) have no default quadrant and are left out
unless mapped. ``neutral=drop`` (default) leaves neutral out; ``neutral=centre`` keeps it with
the static label (0, 0) and no quadrant. ``artist`` is the actor (``Actor_NN``), so mer's
k-fold splits are actor-disjoint. Video files (modality 01/02, .mp4) are ignored.

A seven-field ``.wav`` name with a field the convention does not have (actor 99, intensity
05, ...) or one naming a recording the release does not hold (neutral at strong intensity,
sung disgust or surprise, a song by actor 18) is no track: ``validate`` lists it as a
"bad_name" problem. ``validate`` also reads the first bytes of every track's file and
reports ("bad_audio") the empty ones, text, other formats and WAV data chunks cut short.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import DatasetError
from .base import Dataset, Track, _flag
from .problems import Problem, ValidationReport
from .tables import is_regular_file

EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
            "07": "disgust", "08": "surprised"}
#: the default emotion -> quadrant map (issue #29; Russell 1980's placement of these words)
QUADRANT_OF = {"happy": "Q1", "angry": "Q2", "fearful": "Q2", "sad": "Q3", "calm": "Q4"}
NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
CHANNELS = {"01": "speech", "02": "song"}
ACTORS = {f"{i:02d}" for i in range(1, 25)}


def name_fault(stem: str) -> str | None:
    """What in a seven-field name is outside the RAVDESS naming convention (or names a recording
    the release does not have), or None when every field is one the release uses."""
    m = NAME.match(stem)
    if not m:
        return "not seven two-digit fields"
    modality, channel, emotion, intensity, statement, repetition, actor = m.groups()
    for field, value, ok, what in (
            ("modality", modality, ("01", "02", "03"), "01-03"), ("vocal channel", channel, CHANNELS, "01-02"),
            ("emotion", emotion, EMOTIONS, "01-08"), ("intensity", intensity, ("01", "02"), "01-02"),
            ("statement", statement, ("01", "02"), "01-02"), ("repetition", repetition, ("01", "02"), "01-02"),
            ("actor", actor, ACTORS, "01-24")):
        if value not in ok:
            return f"{field} {value} is outside the RAVDESS naming convention ({what})"
    if emotion == "01" and intensity == "02":
        return "neutral (emotion 01) has no strong intensity (02) in the release"
    if channel == "02" and emotion in ("07", "08"):
        return f"{EMOTIONS[emotion]} (emotion {emotion}) is not sung in the release (speech only)"
    if channel == "02" and actor == "18":
        return "the release has no song files for actor 18"
    return None


def parse_name(stem: str) -> dict[str, str] | None:
    """The fields of a RAVDESS audio-only file name (without extension), or None when it is not
    one (not seven fields, a field outside the naming convention, or not modality 03)."""
    m = NAME.match(stem)
    if not m or name_fault(stem) is not None:
        return None
    modality, channel, emotion, intensity, statement, repetition, actor = m.groups()
    if modality != "03":
        return None
    return {"channel": CHANNELS[channel], "emotion": EMOTIONS[emotion],
            "intensity": {"01": "normal", "02": "strong"}[intensity],
            "statement": statement, "repetition": repetition, "actor": f"Actor_{actor}"}


def wav_fault(path: Path) -> str | None:
    """Why ``path`` is not a usable WAV file, from its size and header alone (None when it looks
    whole): empty, text, another format, or a data chunk cut short."""
    from ..audio.sniff import is_text, wav_missing_bytes

    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(64)
        missing = wav_missing_bytes(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if size == 0:
        return "empty (0 bytes)"
    if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return "a text file, not audio" if is_text(head) else "not a WAV file (no RIFF/WAVE header)"
    if missing:
        return f"truncated WAV ({missing} bytes of its data chunk missing)"
    return None


def parse_quadrant_map(spec: str | dict | None) -> dict[str, str]:
    """``"happy=Q1,calm=Q4"`` (or a dict) laid over the default map; ``angry=none`` unmaps one."""
    out = dict(QUADRANT_OF)
    if not spec:
        return out
    pairs = spec.items() if isinstance(spec, dict) else (p.partition("=")[::2] for p in str(spec).split(","))
    for emotion, quad in pairs:
        emotion, quad = str(emotion).strip().lower(), str(quad).strip().upper()
        if emotion not in EMOTIONS.values() or emotion == "neutral":
            raise DatasetError(f"quadrants: unknown emotion {emotion!r}; use "
                               f"{', '.join(e for e in EMOTIONS.values() if e != 'neutral')} (neutral: neutral=)")
        if quad in ("NONE", ""):
            out.pop(emotion, None)
        elif quad in ("Q1", "Q2", "Q3", "Q4"):
            out[emotion] = quad
        else:
            raise DatasetError(f"quadrants: {emotion}={quad!r}; write Q1..Q4 or none")
    return out


class RAVDESS(Dataset):
    name = "ravdess"
    description = "RAVDESS song: 1,012 sung phrases by 23 actors, emotion in the file name, mapped to quadrants"
    citation = ("Livingstone, Russo (2018). The Ryerson Audio-Visual Database of Emotional Speech and Song "
                "(RAVDESS). PLoS ONE 13(5): e0196391")
    license = "CC BY-NC-SA 4.0"
    download = "https://zenodo.org/record/1188976 (Audio_Song_Actors_01-24.zip; speech: Audio_Speech_Actors_01-24.zip)"
    layout = "Actor_01/ .. Actor_24/ with 03-02-EE-II-SS-RR-AA.wav files"
    source_scale = "quadrant"

    def __init__(self, root: str | os.PathLike, speech: bool | str = False, song: bool | str = True,
                 neutral: str = "drop", quadrants: str | dict | None = None, clip: bool | str = False) -> None:
        super().__init__(root, clip)
        self.channels = {c for c, on in (("song", _flag(song, "song")), ("speech", _flag(speech, "speech"))) if on}
        if not self.channels:
            raise DatasetError("ravdess: song=false and speech=false leave nothing; keep one of them")
        if neutral not in ("drop", "centre", "center"):
            raise DatasetError(f"ravdess: neutral={neutral!r}; write neutral=drop or neutral=centre")
        self.neutral = "centre" if neutral == "center" else neutral
        self.quadrant_of = parse_quadrant_map(quadrants)

    def _load_index(self) -> dict[str, Track]:
        files = sorted(p for p in self.root.rglob("*.wav") if p.is_file())
        if not files:
            raise DatasetError(f"{self.root}: no .wav files; {self.name} expects {self.layout} "
                               f"(download: {self.download})")
        index: dict[str, Track] = {}
        skipped: dict[str, int] = {}
        for path in files:
            info = parse_name(path.stem)
            fault = name_fault(path.stem) if NAME.match(path.stem) else None
            if fault is not None:
                self._problems.append(Problem("bad_name", f"{path}: {fault}; not a track: rename it to "
                                              "03-CC-EE-II-SS-RR-AA.wav as in the release, or remove it",
                                              path=str(path)))
                continue
            if info is None:
                self._problems.append(Problem("unlabelled_audio", f"{path.name}: not a RAVDESS audio-only file name "
                                              "(03-CC-EE-II-SS-RR-AA.wav); ignored", path=str(path)))
                continue
            if info["channel"] not in self.channels:
                continue
            if path.stem in index:
                self._problems.append(Problem("duplicate", f"{path} and {index[path.stem].audio_path}: the same "
                                              "recording twice; kept the first", path.stem, str(path)))
                continue
            emotion = info["emotion"]
            meta = {k: info[k] for k in ("channel", "emotion", "intensity", "statement", "repetition")}
            if emotion == "neutral" and self.neutral == "centre":
                index[path.stem] = Track(path.stem, path, valence=0.0, arousal=0.0, artist=info["actor"],
                                         metadata=meta)
            elif emotion in self.quadrant_of and emotion != "neutral":
                index[path.stem] = Track(path.stem, path, quadrant=self.quadrant_of[emotion], artist=info["actor"],
                                         metadata=meta)
            else:
                skipped[emotion] = skipped.get(emotion, 0) + 1
        self._notes = []
        for channel, full in (("song", 1012), ("speech", 1440)):
            n = sum(1 for f in files if (i := parse_name(f.stem)) and i["channel"] == channel)
            if channel in self.channels and n != full:
                self._notes.append(f"{n} {channel} recordings found; the full release has {full:,}")
        for emotion, n in sorted(skipped.items()):  # by design, not a problem: said by `validate`
            how = "neutral=centre keeps them at (0, 0)" if emotion == "neutral" else \
                f"--dataset-option quadrants={emotion}=Q2 (say) maps them"
            self._notes.append(f"{n} {emotion} recording(s) left out: no quadrant ({how})")
        return index

    def validate(self) -> ValidationReport:
        """The common report, plus every track whose .wav is empty, text or not a whole WAV file
        (checked from the size and header, without decoding)."""
        rep = super().validate()
        for t in self.index.values():
            if t.audio_path is None or not is_regular_file(t.audio_path):
                continue
            fault = wav_fault(t.audio_path)
            if fault is not None:
                rep.n_audio -= 1
                rep.problems.append(Problem("bad_audio", f"{t.audio_path}: {fault}; re-download it ({self.download})",
                                            t.track_id, str(t.audio_path)))
        return rep

    def actors(self) -> list[str]:
        """The actors with at least one usable recording, in order."""
        return sorted({t.artist for t in self.index.values() if t.artist})
