"""Fixtures shared by the whole suite.

The data mirror beside the project (``../shared/data``) is the real data;
``make test`` also copies it into the user cache with ``optical data fetch``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MIRROR = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The read-only local data mirror (XQuAD, XQuAD-R, bitext)."""
    if not MIRROR.is_dir():
        pytest.fail(f"data mirror {MIRROR} is missing: the suite needs ../shared/data beside the project")
    return MIRROR
