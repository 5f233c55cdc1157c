"""`optical study agreement`: the step each dev criterion keeps, read from real run histories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optical.cli import main
from optical.study.agreement import XQUAD_DEV, AgreementReport, RunAgreement, run_agreement, selection_agreement
from optical.train.record import RunRecord

TUNE_EL = Path(__file__).resolve().parents[2] / "results/tune-el"


def _history_record(history) -> RunRecord:
    """A real run.json of the committed tune-el export, with its history replaced (as a heldout_align run records it)."""
    info = json.loads(next((TUNE_EL / "runs").glob("*/distill/run.json")).read_text(encoding="utf-8"))
    info["result"]["history"] = history
    info["result"]["selection_metric"] = "heldout_align"
    return RunRecord.from_dict(info)


def test_each_criterion_keeps_its_first_best_step():
    history = [
        {"step": 0, "heldout_align": 0.90, XQUAD_DEV: 0.70},
        {"step": 10, "heldout_align": 0.95, XQUAD_DEV: 0.74},
        {"step": 20, "heldout_align": 0.95, XQUAD_DEV: 0.76},
        {"step": 30, "heldout_align": 0.93, XQUAD_DEV: 0.76},
    ]
    entry = {"lang": "el", "method": "ot", "seed": 0}
    compared = run_agreement("r1", entry, _history_record(history))
    assert (compared.heldout_step, compared.xquad_step, compared.evaluations) == (10, 20, 4)
    assert compared.xquad_cost == pytest.approx(0.02) and not compared.same_step
    report = AgreementReport((compared, RunAgreement("r2", "th", "mse", 0, 4, 5, 5, 0.7, 0.7)))
    text = report.to_markdown()
    assert report.same == 1 and "same step in 1 of 2 runs" in text and "| el | ot | 0 | 4 | 10 | 20 | 0.740 | 0.760 |" in text


def test_a_run_without_both_metrics_is_left_out():
    record = _history_record([{"step": 0, "xquad_dev_mrr@10": 0.7}])
    assert run_agreement("r", {"lang": "el", "method": "ot"}, record) is None


def test_cli_on_a_study_without_such_runs_and_a_missing_dir(tmp_path, capsys):
    assert selection_agreement(TUNE_EL).runs == ()
    assert main(["study", "agreement", str(TUNE_EL), "--out", str(tmp_path / "out")]) == 0
    assert "No run recorded both" in capsys.readouterr().out and (tmp_path / "out/agreement.json").is_file()
    assert main(["study", "agreement", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_a_study_that_evaluates_nothing_reports_its_selection(tmp_path):
    """query_noises [] and no trials (configs/dev-agreement.yaml): the report is the selection agreement."""
    from optical.report import write_study_report

    manifest = json.loads((TUNE_EL / "study.json").read_text(encoding="utf-8"))
    entry = {k: v for k, v in manifest["runs"][0].items() if k != "trial"}
    info = json.loads((TUNE_EL / entry["distill_dir"] / "run.json").read_text(encoding="utf-8"))
    info["result"]["history"] = [
        {"step": 0, "heldout_align": 0.9, XQUAD_DEV: 0.7},
        {"step": 8, "heldout_align": 0.95, XQUAD_DEV: 0.75},
    ]
    study = tmp_path / "study"
    (study / entry["distill_dir"]).mkdir(parents=True)
    (study / entry["distill_dir"] / "run.json").write_text(json.dumps(info), encoding="utf-8")
    (study / "study.json").write_text(json.dumps({**manifest, "runs": [entry]}), encoding="utf-8")
    report = write_study_report(study)
    text = (study / "report/report.md").read_text(encoding="utf-8")
    assert "model selection only" in text and "same step in 1 of 1 runs" in text
    assert {path.name for path in report.files} == {"report.md", "agreement.json", "agreement.md"}
