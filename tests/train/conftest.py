from __future__ import annotations

from pathlib import Path

import pytest

from optical.models.tiny import make_tiny_model


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    """A tiny random BERT (hidden 32) standing in for the teacher and student."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "teacher", seed=0)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch, mirror_dir):
    """Each test gets its own cache (teacher cache, models) and reads data from the mirror."""
    monkeypatch.setenv("OPTICAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPTICAL_DATA_DIR", str(mirror_dir))


@pytest.fixture
def tiny_config(tiny_teacher, tmp_path):
    from optical.train import DistillConfig

    def make(method: str = "ot", out: str = "run", **overrides) -> DistillConfig:
        values = dict(
            lang="el",
            method=method,
            out_dir=str(tmp_path / out),
            teacher=str(tiny_teacher),
            budget=128,
            batch_size=16,
            max_length=32,
            select_on="none",
            checkpoint_every=4,
            device="cpu",
        )
        values.update(overrides)
        return DistillConfig(**values)

    return make
