"""Method variants: a named method with its own settings (an ablation such as unbalanced OT), trained as its loss
method, reported under its own name and compared with ot."""

from __future__ import annotations

import copy
import json
import re

import pytest

from optical.errors import OpticalError
from optical.report import write_study_report
from optical.study import expand, parse_study_config, run_study

VARIANTS = {"ot-unbalanced": {"method": "ot", "loss_options": {"ot": {"tau": 1.0}}}}


@pytest.fixture
def variant_raw(smoke_raw) -> dict:
    raw = copy.deepcopy(smoke_raw)
    raw.update(methods=["mse", "ot", "ot-unbalanced"], seeds=[0], query_noises=[0.0], variants=copy.deepcopy(VARIANTS))
    return raw


def _models(run) -> dict[str, str]:
    return {run.eval_base["teacher"]: "teacher-dir"}


def test_a_variant_trains_as_its_method_with_its_settings_and_keeps_its_name(variant_raw, tmp_path):
    runs = {r.method: r for r in expand(parse_study_config(variant_raw)).runs}
    variant, plain = runs["ot-unbalanced"], runs["ot"]
    assert variant.distill.method == "ot" and variant.distill.loss_options["ot"]["tau"] == 1.0
    assert plain.distill.loss_options.get("ot", {}).get("tau") is None and variant.run_id != plain.run_id
    assert variant.method_spec == plain.method_spec and variant.describe()["method"] == "ot-unbalanced"
    assert variant.eval_config(tmp_path, 0.0, _models(variant), None).system == "ot-unbalanced"


def test_bad_variants_are_refused_in_one_line(variant_raw):
    cases = [
        ({"ot+mse": {"method": "ot", "lr": 1e-4}}, r"variants: 'ot\+mse' already names a method"),
        ({"v": {"lr": 1e-4}}, r"variants.v needs a method"),
        ({"v": {"method": "ot"}}, r"variants.v sets nothing over ot"),
        (
            {"v": {"method": "mse", "loss_options": {"ot": {"tau": 1.0}}}},
            r"variants.v.loss_options names ot, which mse does not use",
        ),
        ({"v": {"method": "ot", "seed": 3}}, r"variants.v: unknown key\(s\) seed"),
        ({"v": {"method": "ot", "lr": -1.0}}, r"s.yaml: variants.v: --lr must be a finite number > 0"),
    ]
    for variants, message in cases:
        raw = copy.deepcopy(variant_raw)
        raw["variants"] = variants
        raw["methods"] = ["mse", "ot", *variants]
        with pytest.raises(OpticalError, match=message):
            parse_study_config(raw, source="s.yaml")
    raw = copy.deepcopy(variant_raw)
    raw["methods"] = ["mse", "ot", "ot-idf"]  # not defined
    with pytest.raises(OpticalError, match=r"unknown method 'ot-idf'"):
        parse_study_config(raw, source="s.yaml")
    # A variant that sets what its method already has trains the same runs: refused, not silently merged.
    raw = copy.deepcopy(variant_raw)
    raw["variants"] = {"ot-same": {"method": "ot", "lr": 2.0e-5}}  # the DistillConfig default, which ot runs with
    raw["methods"] = ["mse", "ot", "ot-same"]
    with pytest.raises(OpticalError, match=r"methods 'ot' and 'ot-same' train the same runs"):
        expand(parse_study_config(raw))


def test_a_study_with_a_variant_reports_it_against_ot(variant_raw, study_env, tmp_path):
    variant_raw.update(languages=["el", "de"], resource_groups={"low": ["el"], "high": ["de"]})
    result = run_study(parse_study_config(variant_raw), tmp_path / "study", store=tmp_path / "store", progress=False)
    assert not result.failures
    report = write_study_report(result.study_dir, n_resamples=300)
    markdown = report.files[0].read_text()
    assert "ot-unbalanced vs ot: of 6 comparisons" in markdown  # clir_sentence, align x2en, en2x of el and de
    # The low- vs high-resource contrast of each OT method against each baseline: low minus high, with its CI.
    contrast = re.search(r"Low- vs high-resource, ot − mse at the reference .*?clir_sentence MRR@10: low ([-+.\d]+), "
                         r"high ([-+.\d]+), low − high ([-+.\d]+) \[([-+.\d]+), ([-+.\d]+)\]", markdown)  # fmt: skip
    assert contrast is not None
    low, high, gap, ci_low, ci_high = map(float, contrast.groups())
    assert gap == pytest.approx(low - high, abs=0.0015) and ci_low <= gap <= ci_high
    assert "Holm family: each ablation vs ot, arm reference" in markdown
    assert "ot-unbalanced vs mse" in markdown  # a variant of ot is an OT method: it meets the KD baseline too
    # At a glance: per task, better / worse / not significant over el and de, and the mean of their differences.
    glance = re.search(r"^\| reference \| ot vs mse \| (.*) \|$", markdown, re.MULTILINE)
    assert glance is not None
    first_cell = glance.group(1).split(" | ")[0]  # clir_sentence, the first question task
    better, worse, same, mean = re.fullmatch(r"(\d+) / (\d+) / (\d+) \(([-+.\d]+)\)", first_cell).groups()
    assert int(better) + int(worse) + int(same) == 2
    clir = [r.comparison.diff for r in report.question if (r.method, r.baseline, r.task) == ("ot", "mse", "clir_sentence")]
    assert float(mean) == pytest.approx(sum(clir) / 2, abs=0.0006)
    manifest = json.loads((result.study_dir / "study.json").read_text())
    entry = next(e for e in manifest["runs"] if e["method"] == "ot-unbalanced")
    run = json.loads((result.study_dir / entry["distill_dir"] / "run.json").read_text())
    assert run["config"]["method"] == "ot" and run["config"]["loss_options"]["ot"]["tau"] == 1.0
