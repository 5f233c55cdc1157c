"""Fixtures for the study tests: the data mirror, a private cache, and one smoke study run shared by the tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SMOKE_CONFIG = PROJECT_ROOT / "configs" / "study-smoke.yaml"


@pytest.fixture(scope="session")
def study_env(private_cache_env) -> dict[str, str]:
    """The environment with the mirror as data dir and the session's private cache (for subprocesses)."""
    return {**os.environ}


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
