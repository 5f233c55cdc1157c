"""The study analysis on a tiny in-memory study (tests/report/conftest.py): typed results, nothing rendered."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from optical.eval.results import ZERO_SHOT, EvalRun
from optical.eval.stats import StatsSettings
from optical.report.study.analysis import KD_FAMILY, ZERO_SHOT_FAMILY, StudyAnalysis, analyse_study
from optical.report.study.load import StudyInputs

from .conftest import OFFSET, REFERENCE, tiny_study


@pytest.fixture(scope="module")
def analysis(tiny_analysis) -> StudyAnalysis:
    return tiny_analysis


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


def test_the_headline_is_ot_against_the_baselines_that_matter(analysis):
    reference = analysis.question.arms[0]
    headline = reference.headline
    assert (headline.method, headline.baselines) == ("ot", ("mse", ZERO_SHOT))
    assert {(r.method, r.baseline) for r in headline.rows} == {("ot", "mse"), ("ot", ZERO_SHOT)}
    versus_mse = headline.tally("mse", "clir_sentence")
    assert (versus_mse.better, versus_mse.worse, versus_mse.n) == (1, 0, 2)  # ahead on de, level on sw
    assert headline.tally(ZERO_SHOT, "clir_sentence").better == 2
    assert {(r.method, r.baseline) for r in reference.forest} == {("ot", "mse"), ("ot", ZERO_SHOT)}


def test_the_strongest_other_kd_baseline_joins_the_headline():
    inputs = tiny_study()
    # contrastive and a stronger contrastive-both (a variant of contrastive): the headline takes the stronger one.
    extra = []
    for r in inputs.records:
        if r.method == "mse":
            for name, shift in (("contrastive", 0.02), ("contrastive-both", 0.1)):
                run = _shifted(r.run, name, shift)
                extra.append(dataclasses.replace(r, method=name, run=run))
    manifest = {**inputs.manifest, "config": {"variants": {"contrastive-both": {"method": "contrastive"}}}}
    study = StudyInputs(inputs.study_dir, manifest, inputs.records + tuple(extra), (), ())
    analysis = analyse_study(study, StatsSettings(n_resamples=50))
    assert analysis.question.arms[0].headline.baselines == ("mse", "contrastive-both", ZERO_SHOT)
    assert analysis.question.headline_kd == ("mse", "contrastive-both")
    forest_pairs = {(r.method, r.baseline) for r in analysis.question.arms[0].forest}
    assert ("ot", "contrastive") in forest_pairs  # the full forest keeps every pair


def _shifted(run: EvalRun, system: str, shift: float) -> EvalRun:
    tasks = {}
    for key, task in run.tasks.items():
        per_query = {m: {q: v + shift for q, v in values.items()} for m, values in task.per_query.items()}
        tasks[key] = dataclasses.replace(task, per_query=per_query)
    return dataclasses.replace(run, system=system, student=system, tasks=tasks)


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
    inputs = tiny_study()
    no_mse = tuple(r for r in inputs.records if r.method != "mse")
    result = analyse_study(StudyInputs(inputs.study_dir, inputs.manifest, no_mse, (), ()), StatsSettings(n_resamples=50))
    assert not result.question.answerable and result.question.trained == ("ot",)
    assert result.question.levels == [] and result.comparisons_json()["comparisons"] == []


def test_the_analysis_draws_nothing():
    probe = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from conftest import tiny_study\n"
        "from optical.eval.stats import StatsSettings\n"
        "from optical.report.study import analyse_study\n"
        "analyse_study(tiny_study(), StatsSettings(n_resamples=20))\n"
        "print(sorted(m for m in sys.modules if m.startswith('matplotlib') or m.startswith('optical.report.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(Path(__file__).parent)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.strip()
    assert "matplotlib" not in loaded and "optical.report.document" not in loaded, loaded


def test_late_interaction_gains_are_a_difference_of_differences(tiny_inputs, tmp_path):
    """ot gains 0.10 from MaxSim, mse 0.02, zero-shot none: ot's gain beats both, per language, in one Holm family."""
    from optical.eval.results import TaskResult

    gain = {"ot": 0.10, "mse": 0.02, ZERO_SHOT: 0.0}
    records = []
    for record in tiny_inputs.records:
        (dense,) = record.run.tasks.values()
        per_query = dense.per_query["RR@10"]
        values = {q: v + gain[record.method] + 0.001 * (i % 7) for i, (q, v) in enumerate(per_query.items())}
        late = TaskResult(
            dense.task_key.replace("clir_sentence", "clir_sentence_maxsim"), dense.lang, len(values), "fp", {}, {"RR@10": values}
        )
        run = dataclasses.replace(record.run, tasks={**record.run.tasks, late.task_key: late})
        records.append(dataclasses.replace(record, run=run))
    analysis = analyse_study(dataclasses.replace(tiny_inputs, records=tuple(records)), StatsSettings(n_resamples=400))
    rows = {(r.lang, r.baseline): r.comparison for r in analysis.late_interaction}
    assert set(rows) == {("de", "mse"), ("de", ZERO_SHOT), ("sw", "mse"), ("sw", ZERO_SHOT)}
    assert rows[("de", "mse")].diff == pytest.approx(0.08, abs=1e-3) and rows[("de", "mse")].significant
    assert all(r.task == "clir_sentence_maxsim gain" for r in analysis.late_interaction)
    assert {c["family"] for c in analysis.comparisons_json()["late_interaction"]} == {"MaxSim gain: OT vs each baseline"}
    from optical.report.study.figures import Figures
    from optical.report.study.write import render_study

    markdown = render_study(analysis, Figures(tmp_path)).markdown()
    section = markdown[markdown.index("## Late interaction") :]
    assert "Does OT gain more? " in section and "ot vs mse: more in 2 of 2 languages (de, sw), less in 0" in section
    assert "Under MaxSim, at the reference condition" in section and (tmp_path / "plots/late-interaction.png").is_file()
    assert "ot vs mse on clir_sentence_maxsim: ahead in 2 of 2 languages (de, sw), behind in 0 (dense clir_sentence:" in section
    # Over both languages at once: de's and sw's copy of a question are one question (60, not 120).
    across = {(r.baseline, r.task): r for r in analysis.late_interaction_across}
    gain = across[("mse", "clir_sentence_maxsim gain")]
    assert gain.langs == ("de", "sw") and gain.comparison.n == 60 and gain.comparison.diff == pytest.approx(0.08, abs=1e-3)
    assert across[("mse", "clir_sentence")].comparison.diff == pytest.approx(0.10, abs=1e-3)  # de +0.20, sw level
    assert across[("mse", "clir_sentence_maxsim")].comparison.diff == pytest.approx(0.18, abs=1e-3)
    assert len(analysis.comparisons_json()["late_interaction_across_languages"]) == 2 * 3
    assert "ot vs mse over de, sw: clir_sentence +0.100 [" in section and "clir_sentence_maxsim gain +0.080" in section
