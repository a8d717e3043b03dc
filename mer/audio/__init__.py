"""Audio decoding at any rate, in bounded memory, through one of two decoders chosen per file.

- **libsndfile** (``soundfile``, always installed, no ffmpeg needed): WAV/W64, FLAC, Ogg
  Vorbis and Opus, MP3 and MP2, AIFF, AU, CAF.
- **PyAV** (FFmpeg inside its wheels; the optional extra ``[formats]``): whatever libsndfile
  cannot open or decode: AAC in ``.m4a``/``.mp4``/``.aac``, Opus and Vorbis in WebM/Matroska,
  WMA, AC-3/E-AC-3, ALAC, AMR, and the rare Ogg Opus file libsndfile rejects. ``av`` is
  imported only when a file needs it.

:func:`info` picks the decoder once per file (libsndfile if it opens the file and decodes its
first samples, else PyAV) and records it in :class:`AudioInfo`; :func:`stream` asks that
decoder for float32 ``(frames, channels)`` blocks at the native rate and does the rest (NaN
check, mixing, soxr resampling) the same way for both.

Shapes and units:

- ``load`` returns ``(y, sr)``: ``y`` is float32 in [-1, 1], shape ``(n,)`` when ``mono``
  is true, else ``(channels, n)``; ``sr`` in Hz.
- ``stream`` yields blocks of the same layout, so an hour-long file never needs to be in
  memory at its native rate; resampling (soxr, "HQ") is streamed across block edges, so the
  concatenated blocks equal what ``load`` returns.

Errors are :class:`AudioError` naming the file: missing path, a directory or other
non-regular file, an empty file, a file no decoder can read (and, when only PyAV could and
it is not installed, which ``pip install`` adds it), an mp3 whose last frame is cut short,
NaN or infinite samples, a file with no samples, an offset past the end. Silent (peak below
-80 dBFS), very short (< 1 s), truncated (fewer samples than the header says; an Ogg file
whose last page is cut or has no end-of-stream flag, since Ogg declares no length) or
far-outside-[-1, 1] audio gives a :class:`MERWarning`, not an error. Files are opened through
Python file objects (by both decoders), so names that are not valid UTF-8 work too.

Modules: :mod:`~mer.audio.sniff` (what a file is, before decoding), :mod:`~mer.audio.decoders`
(libsndfile and PyAV), :mod:`~mer.audio.read` (``info``, ``stream``, ``load``, level checks),
:mod:`~mer.audio.find` (``find_audio``).
"""

from .find import find_audio
from .read import (BLOCK_FRAMES, SHORT_SECONDS, SILENCE_PEAK, check_levels, check_rate, check_signal, ensure_channels,
                   info, load, part_seconds, stream)
from .sniff import AUDIO_EXTENSIONS, PYAV_EXTENSIONS, PYAV_INSTALL, SNDFILE_EXTENSIONS, AudioInfo, wav_missing_bytes

__all__ = ["AudioInfo", "info", "stream", "load", "find_audio", "check_signal", "check_levels", "check_rate",
           "part_seconds",
           "ensure_channels", "wav_missing_bytes", "AUDIO_EXTENSIONS", "SNDFILE_EXTENSIONS", "PYAV_EXTENSIONS", "BLOCK_FRAMES",
           "SILENCE_PEAK", "SHORT_SECONDS", "PYAV_INSTALL"]
