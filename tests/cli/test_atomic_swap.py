"""A swap of a whole directory killed between its two renames is undone by the next write."""

from __future__ import annotations

import os

import pytest


def test_a_swap_killed_between_its_renames_is_undone_by_the_next_write(tmp_path):
    from optical.storage import atomic_directory

    target = tmp_path / "export"
    with atomic_directory(target) as building:
        (building / "a.txt").write_text("first")
    # What a kill between the two renames of the next swap leaves: the old dir aside, no target.
    aside = tmp_path / ".export.x1.old"
    aside.mkdir()
    os.replace(target, aside / "export")
    with pytest.raises(RuntimeError):
        with atomic_directory(target):
            raise RuntimeError("the next run fails before its swap")
    assert (target / "a.txt").read_text() == "first" and not aside.exists()
