"""Where the data directory is: ``--data-dir`` flag, then ``$OPTICAL_DATA_DIR``, then the cache."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from optical.data.registry import GROUPS, load_file_registry
from optical.errors import OpticalError
from optical.storage import cache_root

DATA_DIR_ENV = "OPTICAL_DATA_DIR"


def data_dir_location(flag: str | os.PathLike | None) -> Path:
    """The data directory the user asked for (it need not exist yet, e.g. for ``fetch``)."""
    if flag:
        return Path(flag).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return cache_root() / "data"


def resolve_data_dir(flag: str | os.PathLike | None, require: Iterable[str] = GROUPS) -> Path:
    """The data directory, checked to hold every file of the ``require``-d groups.

    Only presence is checked here (hashes are checked by ``optical data fetch``).
    """
    location = data_dir_location(flag)
    if location.exists() and not location.is_dir():
        raise OpticalError(f"data directory {location} is a file, not a directory; pass the directory the data is in")
    remedy = f"run `optical data fetch --data-dir {location}` (or add `--mirror ../shared/data` to copy a local mirror)"
    if not location.is_dir():
        raise OpticalError(f"data directory {location} does not exist; {remedy}")
    required = set(require)
    unknown = required - set(GROUPS)
    if unknown:
        raise OpticalError(f"unknown data group(s) {' '.join(sorted(unknown))}; groups: {' '.join(GROUPS)}")
    missing = [entry.path for entry in load_file_registry() if entry.group in required and not (location / entry.path).is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise OpticalError(f"data directory {location} is incomplete ({missing[0]} is missing{more}); {remedy}")
    return location
