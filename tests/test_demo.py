"""The demo's table: MaxSim CLIR printed beside dense CLIR, from the comparison report of its evaluations."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optical.demo import TABLE_COLUMNS, render_table
from optical.eval.metrics import MetricResult
from optical.eval.results import ZERO_SHOT, EvalRun, TaskResult
from optical.eval.stats import StatsSettings
from optical.report import compare_runs

N_QUERIES = 40


def _run(root: Path, system: str, method: str | None, late_gain: float) -> Path:
    """A run of the demo's tasks whose MaxSim CLIR is its dense CLIR plus ``late_gain``."""
    rng = np.random.default_rng(len(system))
    dense = rng.uniform(0.2, 0.7, N_QUERIES)
    values = {"clir_sentence": dense, "clir_sentence_maxsim": dense + late_gain}
    values |= {"pool": rng.uniform(0.1, 0.5, N_QUERIES), "align_x2en": rng.uniform(0.5, 1.0, N_QUERIES)}
    values["retention"] = rng.uniform(0.5, 0.9, N_QUERIES)
    tasks = {}
    for task, measure in TABLE_COLUMNS:
        lang = "en" if task == "retention" else "el"
        metrics = MetricResult.from_per_query({measure: {f"q{i}": float(v) for i, v in enumerate(values[task])}})
        tasks[f"{task}.{lang}"] = TaskResult.from_metrics(f"{task}.{lang}", lang, f"{task}-fp", metrics)
    student = ZERO_SHOT if method is None else f"students/{method}"
    config = {"distill": {"method": method} if method else {}}
    return EvalRun(system, student, "teacher-x", "test", "split-1", tasks, config=config).save(root / system)


def test_the_table_prints_maxsim_clir_beside_dense(tmp_path):
    runs = [_run(tmp_path, ZERO_SHOT, None, 0.05), _run(tmp_path, "mse", "mse", 0.04), _run(tmp_path, "ot", "ot", 0.06)]
    report = compare_runs(runs, settings=StatsSettings(n_resamples=200))
    table = render_table(report, "el")
    header = table.splitlines()[0]
    assert header.index("clir_sentence.el") < header.index("clir_sentence_maxsim.el") < header.index("pool.el")
    zero_row = next(line for line in table.splitlines() if line.startswith(ZERO_SHOT))
    dense = report.summary(ZERO_SHOT, "clir_sentence", "el", "RR@10").mean
    late = report.summary(ZERO_SHOT, "clir_sentence_maxsim", "el", "RR@10").mean
    assert abs(late - dense - 0.05) < 1e-9
    assert f"{dense:.3f}" in zero_row and f"{late:.3f}" in zero_row
    # OT minus each KD baseline is printed for MaxSim too.
    ot_minus_mse = next(line for line in table.splitlines() if line.startswith("ot − mse"))
    assert ot_minus_mse.count("[") == len(TABLE_COLUMNS)
