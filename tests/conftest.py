"""Fixtures shared by the whole suite.

The data mirror beside the project (``../shared/data``) is the real data;
``make test`` also copies it into the user cache with ``optical data fetch``.
Without the mirror (a clone elsewhere), the installed data dir, which has the
same layout and was verified file by file by that fetch, stands in for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MIRROR = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The read-only local data mirror (XQuAD, XQuAD-R, bitext), else the installed data dir."""
    if MIRROR.is_dir():
        return MIRROR
    from optical.data import resolve_data_dir
    from optical.errors import OpticalError

    try:
        return resolve_data_dir(None)
    except OpticalError as exc:
        pytest.fail(f"data mirror {MIRROR} is missing and so is the installed data ({exc})")


@pytest.fixture(scope="session")
def mirror_itself() -> Path:
    """The data mirror beside the project, for what only it carries (its README); skipped where it is not there."""
    if not MIRROR.is_dir():
        pytest.skip(f"the data mirror {MIRROR} is not beside this clone")
    return MIRROR


@pytest.fixture(scope="session")
def private_cache_env(tmp_path_factory: pytest.TempPathFactory, mirror_dir: Path):
    """OPTICAL_DATA_DIR = the mirror and OPTICAL_CACHE_DIR = a cache of this session (teacher and document
    caches, logs, default store); both restored at the end. Yields the cache dir."""
    cache = tmp_path_factory.mktemp("cache")
    saved = {k: os.environ.get(k) for k in ("OPTICAL_DATA_DIR", "OPTICAL_CACHE_DIR")}
    os.environ["OPTICAL_DATA_DIR"] = str(mirror_dir)
    os.environ["OPTICAL_CACHE_DIR"] = str(cache)
    yield cache
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
