"""Fixtures for the study tests: the data mirror, a private cache, and one smoke study run shared by the tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SMOKE_CONFIG = PROJECT_ROOT / "configs" / "study-smoke.yaml"


@pytest.fixture(scope="session")
def study_env(mirror_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """OPTICAL_DATA_DIR = the mirror and a cache of this session (teacher and document caches, default store)."""
    cache = tmp_path_factory.mktemp("study-cache")
    saved = {k: os.environ.get(k) for k in ("OPTICAL_DATA_DIR", "OPTICAL_CACHE_DIR")}
    os.environ["OPTICAL_DATA_DIR"] = str(mirror_dir)
    os.environ["OPTICAL_CACHE_DIR"] = str(cache)
    yield {**os.environ}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def smoke_raw() -> dict:
    return yaml.safe_load(SMOKE_CONFIG.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def smoke_study(study_env, tmp_path_factory: pytest.TempPathFactory):
    """configs/study-smoke.yaml run once, end to end, into its own study dir and store."""
    from optical.report import write_study_report
    from optical.study import load_study_config, run_study

    root = tmp_path_factory.mktemp("smoke")
    result = run_study(load_study_config(SMOKE_CONFIG), root / "study", store=root / "store", progress=False)
    write_study_report(result.study_dir)
    return result
