"""Fixtures shared by the whole suite.

The data mirror beside the project (``../shared/data``) is the real data;
``make test`` also copies it into the user cache with ``optical data fetch``.
Without the mirror (a clone elsewhere), the installed data dir, which has the
same layout and was verified file by file by that fetch, stands in for it.
"""

from __future__ import annotations

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
