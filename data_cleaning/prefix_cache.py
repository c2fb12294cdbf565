"""An on-disk cache of what is derived from ``phonenumbers``' big tables, per country.

Loading libphonenumber's geocoding table costs ~0.45 s and ~100 MB in every new process
(``pilotdial clean``, each RQ work-horse), yet a list uses the prefixes of one or two
countries. The per-country prefix indexes built from it (sorted integer keys and value ids:
see :class:`data_cleaning.vectorised._PrefixIndex`) and the country's name and time zones are
stored here once and read back in milliseconds.

Entries are keyed by the ``phonenumbers`` version and this format's version, so an upgraded
library never reads an old entry. They are written to a temporary file and renamed into place
(processes racing to write one write the same bytes). Nothing depends on the cache: an entry
that cannot be read or written is rebuilt from ``phonenumbers`` and a debug line is logged.

The directory is ``$PILOTDIAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/pilotdial``, else
``~/.cache/pilotdial``; ``PILOTDIAL_CACHE_DIR=off`` turns the cache off.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np
import phonenumbers

__all__ = [
    "cache_dir",
    "decode_values",
    "encode_values",
    "load_arrays",
    "load_json",
    "store_arrays",
    "store_json",
]

log = logging.getLogger(__name__)

#: Bumped whenever what is stored changes meaning.
_FORMAT: Final = 1


def cache_dir() -> Path | None:
    """The cache directory, or ``None`` when the cache is turned off."""
    configured = os.environ.get("PILOTDIAL_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in {"", "off", "0", "none"} else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pilotdial"


def _path(name: str, suffix: str) -> Path | None:
    root = cache_dir()
    if root is None:
        return None
    version = phonenumbers.__version__
    return root / f"phonenumbers-{version}" / f"{name}.v{_FORMAT}{suffix}"


def load_arrays(name: str) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``name``, or ``None`` (not stored, unreadable, cache off)."""
    path = _path(name, ".npz")
    if path is None or not path.is_file():
        return None
    try:
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:  # truncated, foreign
        log.debug("prefix cache entry %s unreadable (%s); rebuilding it", path, error)
        return None


def store_arrays(name: str, arrays: dict[str, np.ndarray]) -> None:
    """Store ``arrays`` under ``name`` (best effort)."""
    path = _path(name, ".npz")
    if path is not None:
        _write(path, lambda handle: np.savez(handle, allow_pickle=False, **arrays))


def load_json(name: str) -> Any:
    """The JSON value stored under ``name``, or ``None``."""
    path = _path(name, ".json")
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.debug("prefix cache entry %s unreadable (%s); rebuilding it", path, error)
        return None


def store_json(name: str, value: Any) -> None:
    """Store a JSON value under ``name`` (best effort)."""
    path = _path(name, ".json")
    if path is not None:
        data = json.dumps(value, ensure_ascii=False).encode("utf-8")
        _write(path, lambda handle: handle.write(data))


def _write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as stream:
                write(stream)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as error:  # read-only home, full disk: the cache is only an optimisation
        log.debug("prefix cache entry %s not written (%s)", path, error)


def encode_values(values: list[Any]) -> np.ndarray:
    """A list of JSON values as a byte array (``np.savez`` without pickles)."""
    return np.frombuffer(json.dumps(values, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def decode_values(data: np.ndarray) -> list[Any]:
    """The list :func:`encode_values` stored."""
    values = json.loads(data.tobytes().decode("utf-8"))
    if not isinstance(values, list):
        raise ValueError("a prefix cache value list is not a list")
    return values
