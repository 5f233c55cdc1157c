"""Grid expansion: run counts, stable and distinct ids, cells, zero-shot and skipped cells."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from optical.errors import OpticalError
from optical.study import expand, parse_study_config
from optical.train.precision import resolve_precision

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _ids(raw: dict) -> list[str]:
    return [run.run_id for run in expand(parse_study_config(copy.deepcopy(raw))).runs]


def test_smoke_grid_has_one_zero_shot_and_every_method_seed_pair(smoke_raw):
    plan = expand(parse_study_config(copy.deepcopy(smoke_raw)))
    assert [r.method for r in plan.runs] == ["zero-shot", "mse", "mse", "ot", "ot"]
    assert {(r.method, r.seed) for r in plan.runs[1:]} == {("mse", 0), ("mse", 1), ("ot", 0), ("ot", 1)}
    assert all(r.query_noises == (0.0, 0.2) for r in plan.runs)
    assert plan.runs[1].distill.budget == 64 and plan.runs[1].distill.sources == ["xnli_devtest"]


def test_ids_are_stable_distinct_and_follow_the_configuration(smoke_raw):
    ids = _ids(smoke_raw)
    assert len(set(ids)) == len(ids)
    reordered = dict(reversed(list(copy.deepcopy(smoke_raw).items())))
    assert _ids(reordered) == ids
    changed = copy.deepcopy(smoke_raw)
    changed["base"]["distill"]["lr"] = 1e-4
    changed_ids = _ids(changed)
    assert changed_ids[0] == ids[0]  # zero-shot: no distillation, same id
    assert not set(changed_ids[1:]) & set(ids[1:])


def test_query_noise_is_an_evaluation_variant_not_a_new_run(smoke_raw):
    more = copy.deepcopy(smoke_raw)
    more["query_noises"] = [0.0, 0.2, 0.4]
    plan = expand(parse_study_config(more))
    assert [r.run_id for r in plan.runs] == _ids(smoke_raw)
    assert all(r.query_noises == (0.0, 0.2, 0.4) for r in plan.runs)


def test_cells_are_a_union_of_partial_grids(smoke_raw):
    raw = copy.deepcopy(smoke_raw)
    raw["languages"] = ["el", "de"]
    raw["noises"] = [0.0]
    raw["cells"] = [
        {"languages": ["el", "de"], "methods": ["mse"]},
        {"languages": ["el"], "methods": ["ot"], "noises": [0.0, 0.5]},
    ]
    runs = expand(parse_study_config(raw)).runs
    coordinates = sorted((r.lang, r.method, r.noise, r.seed) for r in runs)
    expected = sorted(
        [(lang, "mse", 0.0, s) for lang in ("el", "de") for s in (0, 1)]
        + [("el", "ot", n, s) for n in (0.0, 0.5) for s in (0, 1)]
    )
    assert coordinates == expected


def test_zero_shot_is_shared_by_backbones_and_missing_domains_are_skipped(smoke_raw):
    raw = copy.deepcopy(smoke_raw)
    raw["backbones"]["other"] = {"tiny": {"hidden": 32, "layers": 1, "seed": 2}}
    raw["domains"]["questions"] = ["mintaka_dev_questions"]  # no en-el pairs
    plan = expand(parse_study_config(raw))
    assert sum(r.is_zero_shot for r in plan.runs) == 1
    assert len([r for r in plan.runs if not r.is_zero_shot]) == 2 * 2 * 2  # backbones x methods x seeds (nli only)
    assert {(c.backbone, c.domain) for c in plan.skipped} == {("tiny", "questions"), ("other", "questions")}


def test_budget_all_means_every_pair(smoke_raw):
    raw = copy.deepcopy(smoke_raw)
    raw["budgets"] = ["all", 64]
    runs = [r for r in expand(parse_study_config(raw)).runs if not r.is_zero_shot]
    assert sorted({str(r.distill.budget) for r in runs}) == ["64", "None"]
    assert runs[0].describe()["budget"] == "all"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"languagez": ["el"]}, "unknown key(s) languagez"),
        ({"methods": ["mse", "sinkhorn"]}, "unknown method 'sinkhorn'"),
        ({"languages": ["xx"]}, "unknown language code 'xx'"),
        ({"languages": ["en"]}, "'en'"),
        ({"base": {"distill": {"batch_sise": 8}}}, "base.distill: unknown key(s) batch_sise"),
        ({"base": {"distill": {"lang": "el"}}}, "base.distill: unknown key(s) lang"),
        ({"cells": [{"seed": [0]}]}, "cells[0]: unknown key(s) seed"),
        ({"budgets": [0]}, "budget 0 must be >= 1"),
        ({"domains": {"nli": ["no_such_source"]}}, "unknown bitext source 'no_such_source'"),
    ],
)
def test_bad_configs_are_one_line_errors(smoke_raw, change, message):
    raw = copy.deepcopy(smoke_raw)
    raw.update(change)
    with pytest.raises(OpticalError) as info:
        parse_study_config(raw, source="study.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("study.yaml") and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["study-cpu", "study-lowres", "study-v2", "tune-el", "tune-minilm"])
def test_committed_studies_keep_the_run_ids_of_their_exports(name):
    """A setting added to the configs (e.g. evaluation precision) must leave every committed run findable: the
    runner adopts a committed run by its id, so a changed id would recompute it."""
    from optical.study import load_study_config

    config = load_study_config(PROJECT_ROOT / "configs" / f"{name}.yaml")
    exported = json.loads((PROJECT_ROOT / "results" / name / "study.json").read_text(encoding="utf-8"))
    assert {run["id"] for run in exported["runs"]} <= {run.run_id for run in expand(config).runs}


def test_evaluation_precision_is_part_of_run_ids_and_fp32_is_left_out(smoke_raw):
    def raw_with(precision: str | None) -> dict:
        raw = copy.deepcopy(smoke_raw)
        raw["base"]["eval"].pop("mixed_precision", None)
        if precision is not None:
            raw["base"]["eval"]["mixed_precision"] = precision
        return raw

    fp32, bf16 = _ids(raw_with("no")), _ids(raw_with("bf16"))
    assert not set(fp32) & set(bf16)
    assert _ids(raw_with("auto")) == _ids(raw_with(None)) == (bf16 if resolve_precision("cpu", "auto") == "bf16" else fp32)
    for precision in ("no", "bf16"):
        run = expand(parse_study_config(raw_with(precision))).runs[0]
        assert ("mixed_precision" in run.eval_base) == (precision != "no")  # fp32: left out, the ids of before
        config = run.eval_config(PROJECT_ROOT, 0.0, {run.eval_base["teacher"]: "teacher-dir"}, None)
        assert config.mixed_precision == precision  # still what the evaluation runs with
