"""One statistics policy: `optical compare` on a study's run dirs and `optical study report` on the study
print the same means, CIs and p-values for every pair they share."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from optical.cli import main
from optical.eval.stats import StatsSettings, resamples_for_family
from optical.report import compare_runs, write_study_report

RESAMPLES = 300


@pytest.fixture(scope="module")
def both(smoke_study, tmp_path_factory):
    study_dir = smoke_study.study_dir
    manifest = json.loads((study_dir / "study.json").read_text())
    # The reference condition's evaluations (typo rate 0): zero-shot, and mse and ot with two seeds each.
    run_dirs = [study_dir / entry["eval_dirs"]["0"] for entry in manifest["runs"]]
    out = tmp_path_factory.mktemp("compare")
    assert main(["compare", *map(str, run_dirs), "--out", str(out), "--n-resamples", str(RESAMPLES)]) == 0
    compared = compare_runs(run_dirs, settings=StatsSettings(n_resamples=RESAMPLES))
    study = write_study_report(study_dir, n_resamples=RESAMPLES)
    return compared, study, json.loads((out / "comparison.json").read_text())


def test_every_pair_the_two_share_has_identical_numbers(both):
    compared, study, _ = both
    shared = 0
    for row in study.question:
        if row.condition[4] != 0.0:
            continue
        theirs = compared.comparison(row.method, row.baseline, row.task, row.lang, row.comparison.measure)
        assert theirs is not None, (row.method, row.baseline, row.task, row.lang)
        mine = row.comparison
        for name in ("n", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p_value", "effect_size", "wins", "losses"):
            assert getattr(theirs, name) == getattr(mine, name), name
        assert theirs.family and mine.family and theirs.family != mine.family  # each names its Holm family
        shared += 1
    # ot vs mse, ot vs zero-shot and mse vs zero-shot on clir_sentence and align_x2en/en2x of el.
    assert shared == 9


def test_the_cli_report_carries_the_same_numbers_and_names_its_families(both):
    compared, _, written = both
    by_key = {(c["system_a"], c["system_b"], c["task"], c["scope"], c["measure"]): c for c in written["comparisons"]}
    for row in compared.comparisons:
        c = row.comparison
        on_disk = by_key[(c.system_a, c.system_b, row.task, row.scope, c.measure)]
        assert (on_disk["ci_low"], on_disk["ci_high"], on_disk["p_value"]) == (c.ci_low, c.ci_high, c.p_value)
        assert on_disk["family"] == c.family


def test_the_study_report_names_its_holm_families(smoke_study):
    text = (smoke_study.study_dir / "report" / "report.md").read_text()
    assert "Holm family: OT vs each KD baseline" in text and "Holm family: each method vs zero-shot" in text


def test_a_family_too_large_for_its_resamples_is_flagged(smoke_study, tmp_path):
    # With 20 resamples no bootstrap p-value is below 2/21, so Holm over any family of 2 or more can never pass.
    copy = tmp_path / "study"
    shutil.copytree(smoke_study.study_dir, copy, ignore=shutil.ignore_patterns("report"))
    write_study_report(copy, n_resamples=20)
    flagged = (copy / "report" / "report.md").read_text()
    warning = re.search(r'Warning: the family "OT vs each KD baseline[^"]*" has (\d+) comparisons.*?--resamples (\d+)', flagged)
    assert warning is not None
    assert int(warning.group(2)) == resamples_for_family(int(warning.group(1)))
    write_study_report(copy, n_resamples=RESAMPLES)
    assert "Warning: the family" not in (copy / "report" / "report.md").read_text()


def test_the_typo_arm_leaves_out_the_alignment_task_and_compares_ot_with_zero_shot(both):
    _, study, _ = both
    typo_rows = [r for r in study.question + study.changes if r.condition[4] != 0.0]
    assert typo_rows and {r.task for r in typo_rows} == {"clir_sentence"}  # query typos do not touch FLORES
    assert {r.task for r in study.question if r.condition[4] == 0.0} == {"clir_sentence", "align_x2en", "align_en2x"}
    assert {(r.method, r.baseline) for r in study.changes} == {("ot", "mse"), ("ot", "zero-shot")}


def test_a_baseline_that_kept_its_initial_student_is_marked(smoke_study, tmp_path):
    copy = tmp_path / "study"
    shutil.copytree(smoke_study.study_dir, copy, ignore=shutil.ignore_patterns("report"))
    manifest = json.loads((copy / "study.json").read_text())
    for entry in manifest["runs"]:
        if entry["method"] == "mse":  # as if dev selection had kept step 0 in both seeds
            run_json = copy / entry["distill_dir"] / "run.json"
            info = json.loads(run_json.read_text())
            info["result"]["best_step"] = 0
            run_json.write_text(json.dumps(info))
    report = write_study_report(copy, n_resamples=RESAMPLES)
    text = (copy / "report" / "report.md").read_text()
    assert "mse kept its initial student in every seed for el (dev selection chose step 0)" in text
    ot_vs_mse = [line for line in text.splitlines() if line.startswith("| ot | mse ‡ | el |")]
    rows = report.question + report.changes  # the level table and the change table
    assert len(ot_vs_mse) == sum(1 for r in rows if (r.method, r.baseline) == ("ot", "mse"))
    assert "| ot | zero-shot ‡" not in text  # only a trained baseline can keep its initial student


def test_an_unfinished_study_says_what_each_cell_still_waits_for(smoke_study, tmp_path):
    copy = tmp_path / "study"
    shutil.copytree(smoke_study.study_dir, copy, ignore=shutil.ignore_patterns("report"))
    manifest = json.loads((copy / "study.json").read_text())
    unfinished = next(e for e in manifest["runs"] if e["method"] == "ot")
    unfinished["status"] = "pending"
    for rel in unfinished["eval_dirs"].values():
        shutil.rmtree(copy / rel)
    (copy / "study.json").write_text(json.dumps(manifest))
    write_study_report(copy, n_resamples=RESAMPLES)
    text = (copy / "report" / "report.md").read_text()
    done = sum(e["status"] == "done" for e in manifest["runs"])
    assert f"{done} of {len(manifest['runs'])} runs complete" in text and "Coverage, at the end" in text
    coverage = text[text.index("## Coverage") :]
    assert re.search(r"^\| ot \| [^|]+ \| 1 / 2 \| el \|$", coverage, re.MULTILINE)
    assert re.search(r"^\| mse \| [^|]+ \| 2 / 2 \| - \|$", coverage, re.MULTILINE)
    assert "## Coverage" not in (smoke_study.study_dir / "report" / "report.md").read_text()  # a finished study


def test_planned_budgets_of_mixed_kinds_are_reported_as_pending_and_the_tasks_are_named(smoke_study, tmp_path):
    copy = tmp_path / "study"
    shutil.copytree(smoke_study.study_dir, copy, ignore=shutil.ignore_patterns("report"))
    manifest = json.loads((copy / "study.json").read_text())
    trained = next(e for e in manifest["runs"] if e["method"] == "mse")
    for budget, run_id in ((500, "p500"), ("all", "pall")):  # queued runs of the budget arm, none finished
        path = f"runs/{run_id}"
        manifest["runs"].append(
            {**trained, "id": run_id, "budget": budget, "status": "pending", "path": path,
             "distill_dir": f"{path}/distill", "eval_dirs": {"0": f"{path}/eval-0"}}
        )  # fmt: skip
    (copy / "study.json").write_text(json.dumps(manifest))
    write_study_report(copy, n_resamples=RESAMPLES)
    text = (copy / "report" / "report.md").read_text()
    assert "Pending: the study plans budget 500, all beside 64" in text
    assert "Tasks: clir_sentence: questions in X against the English XQuAD-R sentences, MRR@10; align_x2en / align_en2x" in text


def test_a_kept_collapsed_student_is_said_and_marked(smoke_study, tmp_path):
    copy = tmp_path / "study"
    shutil.copytree(smoke_study.study_dir, copy, ignore=shutil.ignore_patterns("report"))
    manifest = json.loads((copy / "study.json").read_text())
    for entry in manifest["runs"]:
        if entry["method"] == "ot":  # as if selection had kept step 4, whose dev-question spread fell to 2%
            run_json = copy / entry["distill_dir"] / "run.json"
            info = json.loads(run_json.read_text())
            spreads = [{"step": 0, "dev_query_spread": 0.5}, {"step": 4, "dev_query_spread": 0.01}]
            info["result"].update(best_step=4, history=spreads)
            run_json.write_text(json.dumps(info))
    write_study_report(copy, n_resamples=RESAMPLES)
    text = (copy / "report" / "report.md").read_text()
    assert "ot's kept student had collapsed (pooled dev-question embeddings nearly identical) in 2 of 2 seeds for el" in text
    assert re.search(r"^\| reference \| ot vs mse \| .*, 1 § \|", text, re.MULTILINE)
    assert "| ot § | mse | el |" in text and "| mse § |" not in text


def test_the_study_report_writes_its_comparisons_as_data(both):
    _, study, _ = both
    written = json.loads((study.report_dir / "comparisons.json").read_text())
    rows = study.question + study.changes
    assert len(written["comparisons"]) == len(rows) and written["n_resamples"] == RESAMPLES
    for on_disk, row in zip(written["comparisons"], rows):
        names = (on_disk["method"], on_disk["baseline"], on_disk["lang"], on_disk["task"])
        assert names == (row.method, row.baseline, row.lang, row.task)
        assert (on_disk["diff"], on_disk["ci_low"], on_disk["p_holm"], on_disk["family"]) == (
            row.comparison.diff,
            row.comparison.ci_low,
            row.comparison.p_holm,
            row.comparison.family,
        )
        assert on_disk["kind"] == ("change" if row.change else "level")
        assert on_disk["condition"]["query_noise"] == row.condition[4]
    assert study.report_dir / "comparisons.json" in study.files  # so an export carries it


def test_the_cost_table_keeps_runs_of_different_thread_counts_apart(smoke_study, tmp_path):
    copy = tmp_path / "study"
    shutil.copytree(smoke_study.study_dir, copy, ignore=shutil.ignore_patterns("report"))
    runs = json.loads((copy / "study.json").read_text())["runs"]
    run_jsons = [copy / entry["distill_dir"] / "run.json" for entry in runs if entry.get("distill_dir")]

    def cost_rows() -> list[str]:
        write_study_report(copy, n_resamples=RESAMPLES)
        text = (copy / "report" / "report.md").read_text()
        table = text.split("Cost: training minutes per run", 1)[1].split("\n\n", 2)[1]
        return table.splitlines()

    threads = {json.loads(path.read_text())["throughput"]["torch_threads"] for path in run_jsons}
    assert len(threads) == 1 and next(iter(threads)) >= 1  # every smoke run recorded its threads
    rows = cost_rows()
    assert rows[0] == "| method | budget | threads | runs | median min | min | max |"
    assert all(f"| {next(iter(threads))} | 2 |" in row for row in rows[2:]) and len(rows) == 4  # mse, ot: 2 seeds each

    # One run as if computed beside another on fewer threads: a row of its own.
    info = json.loads(run_jsons[0].read_text())
    info["throughput"]["torch_threads"] = next(iter(threads)) + 1
    run_jsons[0].write_text(json.dumps(info))
    assert len(cost_rows()) == 5

    # Records written before threads were recorded: the table keeps its old columns.
    for path in run_jsons:
        info = json.loads(path.read_text())
        del info["throughput"]["torch_threads"]
        path.write_text(json.dumps(info))
    assert cost_rows()[0] == "| method | budget | runs | median min | min | max |"
