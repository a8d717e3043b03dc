"""The one exception family of mer, and its warning class.

Every error a user can cause (a bad path, an unreadable file, a malformed CSV, an unknown
model name, a bad config) is raised as a subclass of :class:`MERError` whose message names
the file or value at fault and says what to do. The CLI prints ``str(error)`` as a single
line on stderr and exits non-zero; library users can catch ``mer.MERError``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable


class MERError(Exception):
    """Base class of every error mer raises on purpose."""

    #: the CLI's exit status for this error (2 for usage errors, see :class:`UsageError`)
    exit_status = 1


class AudioError(MERError):
    """An audio file is missing, unreadable, empty or otherwise unusable."""


class DatasetError(MERError):
    """A dataset folder or annotation file is missing or malformed."""


class ConfigError(MERError):
    """A configuration value, flag or YAML key is invalid."""


class UsageError(ConfigError):
    """Flags that cannot work together (an output that is also an input, a port in use): the
    CLI exits with status 2, as for a flag argparse rejects, before any work is done."""

    exit_status = 2


class ModelError(MERError):
    """An unknown model name, or a checkpoint that cannot be loaded."""


class MERWarning(UserWarning):
    """Something worth knowing that does not stop the work (silent audio, very short clip...)."""


def check_arguments(fn: Callable[..., Any], kwargs: dict[str, Any], what: str, error: type[MERError],
                    flag: str, internal: tuple[str, ...] = ()) -> None:
    """Raise ``error`` naming the valid choices when ``kwargs`` holds a name ``fn`` does not take.

    Used where user-given options are passed on as keyword arguments (model arguments,
    dataset options), so a typo is a user error while a ``TypeError`` raised *inside* ``fn``
    stays the bug it is."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
             and n != "self" and n not in internal]
    for key in kwargs:
        if key not in valid and key not in internal:
            raise error(f"{what}: unknown option {key!r}; valid {flag} names: {', '.join(valid) or 'none'}")


#: optional packages -> the extra of ``mer-toolkit`` that installs them
EXTRAS = {"torch": "train", "sklearn": "train", "scipy": "train", "matplotlib": "plot", "onnx": "export",
          "onnxscript": "export", "av": "formats", "tensorboard": "train", "fastapi": "serve", "uvicorn": "serve",
          "multipart": "serve", "ray": "ray", "pyarrow": "ray", "usearch": "ann", "mutagen": "tags",
          "beets": "beets", "transformers": "hub"}


def install_hint(module: str) -> str:
    """``pip install 'mer-toolkit[EXTRA]'`` for an optional package (its import name)."""
    root = module.split(".")[0]
    extra = EXTRAS.get(root)
    return f"pip install 'mer-toolkit[{extra}]'" if extra else f"pip install {root}"


def require(module: str, purpose: str) -> None:
    """Raise ConfigError with the install line when optional ``module`` is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{purpose} needs {module}, which is not installed: {install_hint(module)}")


#: commands whose own extra installs every optional package they import (so one line does it all)
COMMAND_EXTRAS = {"export": ("export", {"torch", "onnx", "onnxscript"})}


def missing_extra(exc: ModuleNotFoundError, command: str) -> ConfigError | None:
    """The one-line error for an optional package missing at run time, or None for other imports.
    A command with its own extra (``mer export``) names that extra, not the package's usual one."""
    name = (exc.name or "").split(".")[0]
    if name not in EXTRAS:
        return None
    extra, covers = COMMAND_EXTRAS.get(command, (None, set()))
    hint = f"pip install 'mer-toolkit[{extra}]'" if name in covers else install_hint(name)
    return ConfigError(f"`mer {command}` needs {name}, which is not installed: {hint}")
