"""Fixtures of the report tests: a tiny in-memory study (records and manifest, no model, no file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optical.eval.results import ZERO_SHOT, EvalRun, TaskResult
from optical.eval.stats import StatsSettings
from optical.report.study.analysis import StudyAnalysis, analyse_study
from optical.report.study.load import Record, StudyInputs

N_QUERIES = 60
REFERENCE = {"backbone": "tiny", "domain": "nli", "budget": 1000, "noise": 0.0, "query_noise": 0.0}
#: Mean RR@10 of each system per language and budget: ot ahead of mse on de, level on sw; both ahead of zero-shot.
LEVELS = {
    ("de", "ot", 1000): 0.70,
    ("de", "mse", 1000): 0.50,
    ("sw", "ot", 1000): 0.45,
    ("sw", "mse", 1000): 0.45,
    ("de", "ot", 100): 0.55,
    ("de", "mse", 100): 0.45,
    ("sw", "ot", 100): 0.40,
    ("sw", "mse", 100): 0.40,
}
ZERO_SHOT_LEVEL = {"de": 0.30, "sw": 0.20}
#: Every system's per-query deviation from its level: the same queries are easy or hard for all.
SPREAD = np.random.default_rng(7).uniform(-0.2, 0.2, N_QUERIES)
#: A system's mean over its two seeds (shifted by 0 and 0.01) is its level plus this.
OFFSET = float(SPREAD.mean()) + 0.005


def _run(lang: str, system: str, level: float, seed: int) -> EvalRun:
    """An evaluation with clir_sentence per-query RR@10 around ``level``: the same query spread for every system
    (so differences are paired), and a small per-seed shift."""
    values = {f"q{i}": float(level + SPREAD[i] + 0.01 * seed) for i in range(N_QUERIES)}
    task = TaskResult(f"clir_sentence.{lang}", lang, N_QUERIES, "fp", {}, {"RR@10": values})
    return EvalRun(system, system, "teacher", "test", "split-fp", {task.task_key: task})


def _entry(lang: str, method: str, seed, budget, noise=0.0, status="done") -> dict:
    axes = {"backbone": "tiny", "domain": "nli", "budget": budget, "noise": noise}
    if method == ZERO_SHOT:
        axes = {"backbone": "tiny", "domain": None, "budget": None, "noise": None}
    return {
        "lang": lang,
        "method": method,
        "seed": seed,
        **axes,
        "query_noises": [0.0],
        "status": status,
        "path": f"runs/{lang}-{method}-{seed}-{budget}-{noise}",
    }


def tiny_study() -> StudyInputs:
    """de and sw; zero-shot, mse and ot with two seeds at budgets 100 and 1000; an ot run at bitext noise 0.2 planned
    and not finished; one finished mse run whose evaluation was lost."""
    records, entries = [], []
    for lang in ("de", "sw"):
        entries.append(_entry(lang, ZERO_SHOT, None, None))
        run = _run(lang, ZERO_SHOT, ZERO_SHOT_LEVEL[lang], 0)
        records.append(Record(lang, ZERO_SHOT, None, "tiny", None, None, None, 0.0, run))
        for (level_lang, method, budget), level in LEVELS.items():
            if level_lang != lang:
                continue
            for seed in (0, 1):
                entries.append(_entry(lang, method, seed, budget))
                run = _run(lang, method, level, seed)
                records.append(Record(lang, method, seed, "tiny", "nli", budget, 0.0, 0.0, run))
    entries.append(_entry("de", "ot", 0, 1000, noise=0.2, status="pending"))
    entries.append(_entry("sw", "mse", 2, 1000))
    manifest = {
        "study": "tiny",
        "reference": REFERENCE,
        "resource_groups": {"high": ["de"], "low": ["sw"]},
        "config": {},
        "runs": entries,
    }
    lost = f"{entries[-1]['path']}/eval-0"
    return StudyInputs(Path("tiny"), manifest, tuple(records), (lost,), ())


@pytest.fixture(scope="session")
def tiny_analysis() -> StudyAnalysis:
    return analyse_study(tiny_study(), StatsSettings(n_resamples=400))


@pytest.fixture
def tiny_inputs() -> StudyInputs:
    """The tiny study's records, to change before analysing them."""
    return tiny_study()
