"""The one exception family of mer, and its warning class.

Every error a user can cause (a bad path, an unreadable file, a malformed CSV, an unknown
model name, a bad config) is raised as a subclass of :class:`MERError` whose message names
the file or value at fault and says what to do. The CLI prints ``str(error)`` as a single
line on stderr and exits non-zero; library users can catch ``mer.MERError``.
"""

from __future__ import annotations


class MERError(Exception):
    """Base class of every error mer raises on purpose."""


class AudioError(MERError):
    """An audio file is missing, unreadable, empty or otherwise unusable."""


class DatasetError(MERError):
    """A dataset folder or annotation file is missing or malformed."""


class ConfigError(MERError):
    """A configuration value, flag or YAML key is invalid."""


class ModelError(MERError):
    """An unknown model name, or a checkpoint that cannot be loaded."""


class MERWarning(UserWarning):
    """Something worth knowing that does not stop the work (silent audio, very short clip...)."""
