"""The study analysis on a tiny in-memory study: typed results, nothing rendered, nothing drawn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from optical.eval.results import ZERO_SHOT, EvalRun, TaskResult
from optical.eval.stats import StatsSettings
from optical.report.study.analysis import KD_FAMILY, ZERO_SHOT_FAMILY, StudyAnalysis, analyse_study
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


def _tiny_study() -> StudyInputs:
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


@pytest.fixture(scope="module")
def analysis() -> StudyAnalysis:
    return analyse_study(_tiny_study(), StatsSettings(n_resamples=400))


def test_the_arms_are_the_reference_and_each_varied_axis(analysis):
    arms = [answer.arm for answer in analysis.question.arms]
    assert [arm.name for arm in arms] == ["reference", "budget"]
    assert arms[0].conditions == (("tiny", "nli", 1000, 0.0, 0.0),)
    assert arms[1].conditions == (("tiny", "nli", 100, 0.0, 0.0),)


def test_the_verdicts_count_where_ot_is_ahead_and_level(analysis):
    reference = analysis.question.arms[0]
    verdict = next(v for v in reference.verdicts if (v.method, v.baseline, v.change) == ("ot", "mse", False))
    assert verdict.family == f"{KD_FAMILY}, arm reference" and verdict.family_size == 2
    assert (verdict.n, [r.lang for r in verdict.better], verdict.worse, verdict.ties) == (2, ["de"], (), 1)
    assert verdict.better[0].comparison.diff == pytest.approx(0.2)
    by_group = {g.group: g for g in verdict.groups}
    assert by_group["high"].mean == pytest.approx(0.2) and by_group["low"].mean == pytest.approx(0.0)
    against_zero = [v for v in reference.verdicts if v.baseline == ZERO_SHOT]
    assert {v.method for v in against_zero} == {"ot", "mse"}
    assert all(len(v.better) == 2 and v.family == f"{ZERO_SHOT_FAMILY}, arm reference" for v in against_zero)


def test_the_budget_arm_compares_changes_from_the_reference(analysis):
    budget = analysis.question.arms[1]
    changes = budget.comparisons.change
    assert {(r.method, r.baseline, r.lang) for r in changes} == {("ot", "mse", "de"), ("ot", "mse", "sw")}
    de = next(r for r in changes if r.lang == "de")
    # from budget 1000 to 100: ot changes by -0.15, mse by -0.05
    assert (de.comparison.mean_a, de.comparison.mean_b) == (pytest.approx(-0.15), pytest.approx(-0.05))
    assert de.change and de.comparison.significant


def test_the_glance_counts_match_the_rows(analysis):
    row = next(g for g in analysis.question.glance if (g.arm, g.method, g.baseline) == ("reference", "ot", "mse"))
    (cell,) = row.cells
    assert (cell.better, cell.worse, cell.n) == (1, 0, 2) and cell.mean == pytest.approx(0.1)


def test_the_headline_holds_the_ot_rows_against_kd_and_zero_shot(analysis):
    headline = analysis.question.arms[0].headline
    assert {(r.method, r.baseline) for r in headline} == {("ot", "mse"), ("ot", ZERO_SHOT)}


def test_curves_along_the_budget_and_the_pending_noise(analysis):
    by_axis = {c.axis: c for c in analysis.curves}
    budget = by_axis["budget"]
    assert budget.measured and budget.values == (100, 1000)
    (task,) = budget.tasks
    ot_de = next(line for line in task.lines if (line.lang, line.method) == ("de", "ot"))
    assert [p.value for p in ot_de.points] == [100, 1000]
    assert ot_de.points[1].stats.mean == pytest.approx(0.70 + OFFSET)
    zero = next(line for line in task.lines if line.method == ZERO_SHOT and line.lang == "de")
    assert zero.points == () and zero.level.mean == pytest.approx(0.30 + OFFSET - 0.005)  # one seed
    assert budget.difference is not None and budget.difference.pairs == (("ot", "mse"),)
    noise = by_axis["noise"]
    assert not noise.measured and noise.pending == (0.2,) and noise.tasks == ()


def test_gaps_coverage_and_lost_evaluations(analysis):
    assert analysis.gaps.low == ("sw",) and analysis.gaps.high == ("de",)
    gaps = {g.system: g.gap for g in analysis.gaps.rows}
    assert gaps["ot"].gap == pytest.approx(0.70 - 0.45)
    assert analysis.runs_done == 19 and analysis.runs_planned == 20
    pending = [row for row in analysis.coverage if row.waiting]
    assert [(row.method, row.condition[3], row.waiting) for row in pending] == [("ot", 0.2, ("de",))]
    assert analysis.lost == ("runs/sw-mse-2-1000-0.0/eval-0",)
    assert analysis.bias is None and analysis.retention is None  # no pool or retention task evaluated


def test_comparisons_json_is_every_comparison_as_data(analysis):
    data = json.loads(json.dumps(analysis.comparisons_json()))
    rows = data["comparisons"]
    assert len(rows) == len(analysis.question.levels) + len(analysis.question.changes)
    assert {r["kind"] for r in rows} == {"level", "change"}
    assert data["reference"] == REFERENCE and data["n_resamples"] == 400
    first = rows[0]
    assert (first["method"], first["baseline"], first["condition"]["budget"]) == ("ot", "mse", 1000)
    assert first["diff"] == analysis.question.levels[0].comparison.diff


def test_a_study_without_a_kd_baseline_cannot_answer(analysis):
    inputs = _tiny_study()
    no_mse = tuple(r for r in inputs.records if r.method != "mse")
    result = analyse_study(StudyInputs(inputs.study_dir, inputs.manifest, no_mse, (), ()), StatsSettings(n_resamples=50))
    assert not result.question.answerable and result.question.trained == ("ot",)
    assert result.question.levels == [] and result.comparisons_json()["comparisons"] == []


def test_the_analysis_draws_nothing():
    probe = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_study_analysis import _tiny_study\n"
        "from optical.eval.stats import StatsSettings\n"
        "from optical.report.study import analyse_study\n"
        "analyse_study(_tiny_study(), StatsSettings(n_resamples=20))\n"
        "print(sorted(m for m in sys.modules if m.startswith('matplotlib') or m.startswith('optical.report.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(Path(__file__).parent)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.strip()
    assert "matplotlib" not in loaded and "optical.report.document" not in loaded, loaded
