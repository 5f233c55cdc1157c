"""check_model_dir: a dir that passed is not parsed again, but a file changed after the check is seen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from optical.errors import OpticalError
from optical.models import check
from optical.models.check import check_model_dir


def test_a_checked_dir_is_remembered_until_a_file_changes(tiny_model_dir: Path, tmp_path: Path, monkeypatch):
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    assert check_model_dir(model) == model
    parsed: list[Path] = []
    monkeypatch.setattr(check, "_check_files", lambda path, role: parsed.append(path))
    check_model_dir(model)
    assert parsed == []  # the same files: not parsed again
    monkeypatch.undo()
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    with pytest.raises(OpticalError, match="model.safetensors is corrupt"):
        check_model_dir(model, role="--teacher")
