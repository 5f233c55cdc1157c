"""Tuning studies: cells as named trials with their own distill values, dev-split selection only, and the
trial table with the chosen trial per method."""

from __future__ import annotations

import copy
import json
import re
import statistics

import pytest
import yaml

from optical.cli import main
from optical.errors import OpticalError
from optical.report import write_study_report
from optical.study import expand, parse_study_config, run_study

TRIALS = [
    {"methods": ["mse"], "trial": "lr-1e-4", "distill": {"lr": 1.0e-4}},
    {"methods": ["mse"], "trial": "lr-1e-3", "distill": {"lr": 1.0e-3}},
    {"methods": ["ot"], "trial": "lr-1e-4", "distill": {"lr": 1.0e-4}},
    {"methods": ["ot"], "trial": "eps-0.1", "distill": {"lr": 1.0e-4, "loss_options": {"ot": {"eps": 0.1}}}},
]


@pytest.fixture
def tuning_raw(smoke_raw) -> dict:
    raw = copy.deepcopy(smoke_raw)
    raw.update(methods=["mse", "ot"], seeds=[0, 1], query_noises=[], cells=copy.deepcopy(TRIALS))
    raw["base"]["distill"].update(select_on="xquad_dev", evals_per_epoch=2, loss_options={"ot": {"eps": 0.05, "tol": 0.0}})
    return raw


def test_trials_expand_to_their_own_runs_with_merged_settings(tuning_raw):
    runs = expand(parse_study_config(tuning_raw)).runs
    assert len(runs) == 8 and len({r.run_id for r in runs}) == 8
    by_trial = {(r.method, r.trial, r.seed): r for r in runs}
    assert by_trial[("mse", "lr-1e-3", 1)].distill.lr == 1.0e-3
    eps_trial = by_trial[("ot", "eps-0.1", 0)].distill
    assert eps_trial.loss_options == {"ot": {"eps": 0.1, "tol": 0.0}}  # the base's other ot option kept
    assert by_trial[("ot", "lr-1e-4", 0)].describe()["trial"] == "lr-1e-4"
    assert all(r.query_noises == () for r in runs)


def test_a_tuning_study_reads_only_dev_and_chooses_the_best_trial(tuning_raw, study_env, tmp_path):
    result = run_study(parse_study_config(tuning_raw), tmp_path / "study", store=tmp_path / "store", progress=False)
    assert not result.failures and all(s.done for s in result.statuses)
    assert not list((tmp_path / "store").glob("*/eval-*"))  # nothing evaluated on the test split
    report = write_study_report(result.study_dir)
    chosen = json.loads((result.study_dir / "report" / "tuning.json").read_text())["chosen"]

    manifest = json.loads((result.study_dir / "study.json").read_text())
    scores: dict[tuple[str, str], list[float]] = {}
    for entry in manifest["runs"]:
        run = json.loads((result.study_dir / entry["distill_dir"] / "run.json").read_text())
        scores.setdefault((entry["method"], entry["trial"]), []).append(run["result"]["best_metric"])
    for method in ("mse", "ot"):
        trials = {trial: statistics.mean(v) for (m, trial), v in scores.items() if m == method}
        expected = max(trials, key=trials.get)
        picked = next(c for c in chosen if c["method"] == method)
        assert picked["trial"] == expected and picked["dev"] == pytest.approx(trials[expected])
    markdown = report.files[0].read_text()
    assert "| trial | lr | loss_options.ot.eps | seeds |" in markdown  # the settings that differ within a method
    rows = [line for line in markdown.splitlines() if line.startswith("| el |")]
    assert len(rows) == len(TRIALS) and all(re.search(r"\| \d of 2( \(from step \d+\))? \|$", row) for row in rows)
    # The chosen settings as a block to paste into a study config's base, parsed back to what was chosen.
    block = markdown.split("```yaml\n", 1)[1].split("```", 1)[0]
    frozen = yaml.safe_load(block)["per_method"]
    for method in ("mse", "ot"):
        picked = next(c for c in chosen if c["method"] == method)
        assert frozen[method]["lr"] == picked["distill"]["lr"]
    # A tuning study exports its runs' run.json (it has no evaluation), and its report reproduces from the export.
    out = tmp_path / "export"
    assert main(["study", "export", str(result.study_dir), "--out", str(out)]) == 0
    assert len(list(out.glob("runs/*/distill/run.json"))) == 8 and not list(out.glob("runs/*/eval-*"))
    assert (out / "report" / "report.md").read_text() == markdown
    assert main(["study", "report", str(out)]) == 0 and (out / "report" / "report.md").read_text() == markdown


def test_a_cell_with_distill_values_needs_a_trial_name_and_valid_values(tuning_raw):
    raw = copy.deepcopy(tuning_raw)
    del raw["cells"][0]["trial"]
    with pytest.raises(OpticalError, match=r"cells\[0\]: a cell that sets distill values is a tuning trial"):
        parse_study_config(raw, source="tune.yaml")
    raw = copy.deepcopy(tuning_raw)
    raw["cells"][1]["distill"]["lr"] = -1.0
    with pytest.raises(OpticalError, match=r"tune.yaml: cells\[1\].distill \(trial lr-1e-3\): --lr must be a finite number > 0"):
        parse_study_config(raw, source="tune.yaml")
    raw = copy.deepcopy(tuning_raw)
    raw["cells"][2]["distill"]["seed"] = 3
    with pytest.raises(OpticalError, match=r"cells\[2\].distill: unknown key\(s\) seed"):
        parse_study_config(raw, source="tune.yaml")


def test_loss_options_reach_only_the_methods_that_use_them(tuning_raw):
    config = parse_study_config(tuning_raw)
    options = {r.method: r.distill.loss_options for r in expand(config).runs}
    assert options["mse"] == {} and options["ot"]["ot"]["tol"] == 0.0
    raw = copy.deepcopy(tuning_raw)
    raw["base"]["distill"]["loss_options"] = {"contrastive": {"temperature": 0.1}}
    with pytest.raises(OpticalError, match="base.distill.loss_options names contrastive, which no method of the study uses"):
        parse_study_config(raw, source="tune.yaml")


def test_frozen_per_method_settings_reach_only_their_method_and_change_its_run_ids(smoke_raw):
    raw = copy.deepcopy(smoke_raw)
    plain = {(r.method, r.lang, r.seed): r for r in expand(parse_study_config(raw)).runs}
    raw["base"]["per_method"] = {"ot": {"lr": 1.0e-4, "epochs": 2, "loss_options": {"ot": {"eps": 0.1}}}}
    frozen = {(r.method, r.lang, r.seed): r for r in expand(parse_study_config(raw)).runs}
    assert frozen.keys() == plain.keys()
    for key, run in frozen.items():
        if run.method == "ot":
            assert (run.distill.lr, run.distill.epochs, run.distill.loss_options["ot"]["eps"]) == (1.0e-4, 2, 0.1)
            assert run.run_id != plain[key].run_id  # other settings, another run
        elif run.method != "zero-shot":
            assert run.distill == plain[key].distill and run.run_id == plain[key].run_id


def test_per_method_settings_are_checked_when_the_config_is_read(smoke_raw, tuning_raw):
    cases = [
        ({"contrastive": {"lr": 1.0e-4}}, r"s.yaml: base.per_method: method 'contrastive' does not run in this study"),
        ({"mse": {"seed": 1}}, r"s.yaml: base.per_method.mse: unknown key\(s\) seed"),
        ({"mse": {"loss_options": {"ot": {"eps": 0.1}}}}, r"base.per_method.mse.loss_options names ot, which mse does not use"),
        ({"ot": {"lr": -1.0}}, r"s.yaml: base.per_method.ot: --lr must be a finite number > 0"),
    ]
    for per_method, message in cases:
        raw = copy.deepcopy(smoke_raw)
        raw["base"]["per_method"] = per_method
        with pytest.raises(OpticalError, match=message):
            parse_study_config(raw, source="s.yaml")
    # A trial's values win over the frozen ones of its method.
    raw = copy.deepcopy(tuning_raw)
    raw["base"]["per_method"] = {"mse": {"lr": 5.0e-5, "epochs": 2}}
    runs = {(r.trial, r.seed): r.distill for r in expand(parse_study_config(raw)).runs if r.method == "mse"}
    assert (runs[("lr-1e-3", 0)].lr, runs[("lr-1e-3", 0)].epochs) == (1.0e-3, 2)


def _trial(lang: str, method: str, trial: str, score: float, lr: float):
    from optical.report.tuning import TrialResult

    return TrialResult(lang, method, trial, "c", (0,), (0.5,), (score,), (10,), (None,), 20, {"lr": lr, "epochs": 2})


def test_the_choice_across_languages_weighs_each_language_by_rank_not_scale():
    """A barely-seen language moves the score far more than a well-known one; ranks give each the same say."""
    from optical.report.tuning import TuningReport

    trials = [
        # fr: both near the ceiling, lr-small better; dz: lr-big far better; ee: lr-small better.
        _trial("fr", "ot", "lr-small", 0.9990, 1e-4),
        _trial("fr", "ot", "lr-big", 0.9980, 3e-4),
        _trial("dz", "ot", "lr-small", 0.10, 1e-4),
        _trial("dz", "ot", "lr-big", 0.60, 3e-4),
        _trial("ee", "ot", "lr-small", 0.85, 1e-4),
        _trial("ee", "ot", "lr-big", 0.84, 3e-4),
        # lr-only-fr ran on one language: it does not compete across languages.
        _trial("fr", "ot", "lr-only-fr", 1.0, 1e-3),
    ]
    report = TuningReport("t", trials, ["lr"], base={"distill": {"lr": 5e-5, "epochs": 2}})
    choice = report.chosen_across_languages[("ot", "c")]
    assert (choice.trial, choice.languages, choice.compared) == ("lr-small", ("dz", "ee", "fr"), 2)
    assert choice.mean_rank == pytest.approx(4 / 3) and choice.mean_score == pytest.approx((0.999 + 0.1 + 0.85) / 3)
    assert report.chosen[("dz", "ot", "c")].trial == "lr-big"  # each language's own choice stays beside it
    (block,) = report.to_json()["chosen_across_languages"]
    assert block["per_method"] == {"lr": 1e-4} and block["trial"] == "lr-small"
    markdown = report.to_document().markdown()
    assert "## Chosen across languages" in markdown and "| ot | c | lr-small | dz, ee, fr | 2 | 1.33 |" in markdown


def test_a_variant_trial_freezes_only_what_the_trial_set():
    """A variant's own values (contrastive-both's directions) come with the variant, not with the frozen trial."""
    from optical.report.tuning import TrialResult, TuningReport

    options = {"contrastive": {"directions": "both"}}
    trials = [
        TrialResult(
            lang,
            "contrastive-both",
            "lr-1e-4",
            "c",
            (0,),
            (0.5,),
            (0.6,),
            (10,),
            (None,),
            20,
            {"lr": 1e-4, "epochs": 2, "loss_options": options},
        )
        for lang in ("ee", "dz")
    ]
    variants = {"contrastive-both": {"method": "contrastive", "loss_options": {"contrastive": {"directions": "both"}}}}
    report = TuningReport("t", trials, [], base={"distill": {"lr": 5e-5, "epochs": 2}}, variants=variants)
    (block,) = report.to_json()["chosen_across_languages"]
    assert block["per_method"] == {"lr": 1e-4}
    assert report.frozen_settings()[("ee", "c")]["contrastive-both"] == {"lr": 1e-4}
