"""compare_runs, ComparisonReport rendering and ``optical compare`` on synthetic run dirs written to tmp_path."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest

from optical.cli import compare as compare_cli
from optical.errors import OpticalError
from optical.eval.metrics import MetricResult
from optical.eval.results import ZERO_SHOT, EvalRun, TaskResult
from optical.eval.stats import StatsSettings
from optical.report import compare_runs

LANGS = ["el", "hi", "th", "tr", "de", "es", "ru", "zh"]
LOW = {"el", "hi", "th", "tr"}
N_QUERIES = 30
RESAMPLES = 400


def _base_values(lang: str) -> np.ndarray:
    return np.random.default_rng(LANGS.index(lang)).uniform(0.0, 0.6, size=N_QUERIES)


def _write_run(
    root: Path,
    name: str,
    system: str,
    student: str,
    shift_low: float,
    noise_seed: int,
    split_fp: str = "split-1",
    pool_fp: str = "pool-fp",
    method: str | None = None,
) -> Path:
    """A run whose RR@10 is the baseline's plus ``shift_low`` on low-resource languages (plus small noise)."""
    noise = np.random.default_rng(noise_seed)
    tasks = {}
    for lang in LANGS:
        base = _base_values(lang)
        rr = base + (shift_low if lang in LOW else 0.0) + (noise.normal(0, 0.01, N_QUERIES) if shift_low else 0.0)
        ap = base.copy()  # identical to the baseline's on every language
        metrics = MetricResult.from_per_query(
            {
                "RR@10": {f"q{i}": float(v) for i, v in enumerate(rr)},
                "AP": {f"q{i}": float(v) for i, v in enumerate(ap)},
            }
        )
        for task, fp in (("clir_sentence", f"sent-{lang}"), ("pool", f"{pool_fp}-{lang}")):
            key = f"{task}.{lang}"
            tasks[key] = TaskResult.from_metrics(key, lang, fp, metrics)
    config = {"seed": noise_seed, "distill": {"method": method} if method else {}}
    run = EvalRun(system, student, "teacher-x", "test", split_fp, tasks, config=config)
    return run.save(root / name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    return [
        _write_run(root, "optical-s0", "optical", "students/optical-0", 0.3, noise_seed=1, method="ot"),
        _write_run(root, "zero", "zero-shot-model", ZERO_SHOT, 0.0, noise_seed=0),
        _write_run(root, "optical-s1", "optical", "students/optical-1", 0.3, noise_seed=2, method="ot"),
        _write_run(root, "kd", "kd", "students/kd", 0.0, noise_seed=3, method="mse:0.5"),
    ]


@pytest.fixture(scope="module")
def report_and_dir(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    report = compare_runs(runs, settings=StatsSettings(n_resamples=RESAMPLES))
    assert not list(out.iterdir())  # computing writes nothing
    report.save(out)
    return report, out


def test_pairs_are_zero_shot_and_each_kd_baseline_and_seeds_are_grouped(report_and_dir):
    report, _ = report_and_dir
    # mse:0.5 is a KD baseline (a weight only scales the loss): OT is compared with it and with zero-shot.
    assert report.pairs == [("optical", "zero-shot-model"), ("kd", "zero-shot-model"), ("optical", "kd")]
    assert [(s.name, s.n_seeds) for s in report.systems] == [("optical", 2), ("zero-shot-model", 1), ("kd", 1)]
    assert report.systems[0].students == ("students/optical-0", "students/optical-1")
    assert report.tasks == {"clir_sentence": sorted(LANGS), "pool": sorted(LANGS)}
    assert report.main_measures == {"clir_sentence": "RR@10", "pool": "AP"}


def test_significance_follows_the_data_and_holm(report_and_dir):
    report, _ = report_and_dir
    for row in report.comparisons:
        c = row.comparison
        assert c.significant == (c.p_holm < 0.05)
        assert c.p_holm >= c.p_value
        shifted = c.system_a == "optical" and c.measure == "RR@10" and (row.scope in LOW or row.scope == "low")
        assert c.significant == shifted, (c.system_a, c.system_b, row.task, row.scope, c.measure)
        assert c.family.startswith(f"{row.task} ") and f"{c.system_a} vs {c.system_b}" in c.family
    low = report.comparison("optical", "zero-shot-model", "clir_sentence", "low", "RR@10")
    assert low.n == 4 * N_QUERIES and low.diff == pytest.approx(0.3, abs=0.01)
    gaps = {(g.system, g.task): g for g in report.gaps}
    assert gaps[("optical", "clir_sentence")].gap == pytest.approx(gaps[("zero-shot-model", "clir_sentence")].gap - 0.3, abs=0.01)


def test_report_files_hold_the_numbers(report_and_dir):
    report, out = report_and_dir
    data = json.loads((out / "comparison.json").read_text())
    assert data == json.loads(json.dumps(report.to_json()))
    assert data["pairs"] == [list(pair) for pair in report.pairs]
    assert len(data["comparisons"]) == len(report.comparisons)
    pngs = sorted((out / "plots").glob("*.png"))
    assert {p.name for p in pngs} == {"forest.png", "clir_sentence.RR_at_10.png", "pool.AP.png", "resource_gap.png"}
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    markdown = (out / "report.md").read_text()
    assert markdown == report.to_markdown(
        [p.relative_to(out) for p in [out / "plots" / "forest.png", *(p for p in pngs if p.name != "forest.png")]]
    )
    for system in ("optical", "zero-shot-model", "kd"):
        assert system in markdown
    assert "†" in markdown and "Holm families" in markdown  # the legend
    # Every table row: a † in a pair's Δ column exactly when that comparison is Holm-significant.
    checked = 0
    for section in re.split(r"^### ", markdown, flags=re.M)[1:]:
        title = section.splitlines()[0]
        match = re.match(r"(\w+): (\S+)", title)
        if "resource gap" in title or not match:
            continue
        task = match.group(1)
        measure = {"MRR@10": "RR@10", "mAP": "AP"}.get(match.group(2), match.group(2))
        table = [line for line in section.splitlines() if line.startswith("|")]
        header = [cell.strip() for cell in table[0].strip("|").split("|")]
        for line in table[2:]:
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            scope = re.sub(r"\*\*(\w+)\*\*.*", r"\1", cells[0])
            for system, baseline in report.pairs:
                delta = cells[header.index(f"Δ {system} − {baseline}")]
                expected = report.comparison(system, baseline, task, scope, measure).significant
                assert ("†" in delta) == expected, (task, measure, scope, system, baseline, delta)
                checked += 1
    assert checked == 2 * 2 * 3 * (len(LANGS) + 2)  # tasks x measures x pairs x (languages + groups)


def test_a_group_with_one_language_is_not_repeated_as_a_group(runs):
    report = compare_runs(runs, resource_groups={"low": ["el"], "high": ["de", "es"]}, settings=StatsSettings(100))
    scopes = {row.scope for row in report.comparisons}
    assert "high" in scopes and "low" not in scopes


def test_explicit_baseline_and_measures(runs):
    report = compare_runs(runs, baselines=["kd"], measures=["AP"], settings=StatsSettings(100))
    assert report.pairs == [("optical", "kd"), ("zero-shot-model", "kd")]
    assert report.measures == {"clir_sentence": ["AP"], "pool": ["AP"]}
    assert report.main_measures == {"clir_sentence": "AP", "pool": "AP"}
    # A measure may be named as the tables print it (mAP for AP, MRR@10 for RR@10).
    assert compare_runs(runs, baselines=["kd"], measures=["mAP"], settings=StatsSettings(100)).measures == report.measures
    with pytest.raises(OpticalError, match="baseline 'nobody' is not among"):
        compare_runs(runs, baselines=["nobody"], settings=StatsSettings(100))


def test_seeds_of_one_system_must_share_a_teacher(runs, tmp_path):
    other = EvalRun.load(runs[0])
    other.teacher = "another-teacher"
    other.save(tmp_path / "optical-other-teacher")
    with pytest.raises(OpticalError, match="runs named 'optical' .* have different teachers"):
        compare_runs([runs[0], tmp_path / "optical-other-teacher"], settings=StatsSettings(100))


def test_mismatched_fingerprints_are_refused(runs, tmp_path):
    other_split = _write_run(tmp_path, "other-split", "other", "s", 0.0, 9, split_fp="split-2")
    with pytest.raises(
        OpticalError, match=r"optical-s0 \(optical\) and .*other-split \(other\) were evaluated on different splits"
    ):
        compare_runs([runs[0], other_split], settings=StatsSettings(100))
    other_pool = _write_run(tmp_path, "other-pool", "other", "s", 0.0, 9, pool_fp="changed")
    with pytest.raises(
        OpticalError, match=r"optical-s0 \(optical\) and .*other-pool \(other\) have different data for task pool"
    ):
        compare_runs([runs[0], other_pool], settings=StatsSettings(100))


def _cli(argv: list[str]) -> int:
    # The compare subcommand on its own parser, so this test does not depend on the other subcommands.
    parser = argparse.ArgumentParser(prog="optical")
    compare_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_compare(runs, tmp_path, capsys):
    out = tmp_path / "cli-report"
    status = _cli(
        [
            "compare",
            *map(str, runs),
            "--out",
            str(out),
            "--baseline",
            "kd",
            "--low",
            "el,hi",
            "--high",
            "de",
            "--n-resamples",
            "100",
        ]
    )
    assert status == 0
    assert "optical vs kd" in capsys.readouterr().out
    data = json.loads((out / "comparison.json").read_text())
    assert data["resource_groups"] == {"low": ["el", "hi"], "high": ["de"]}
    with pytest.raises(OpticalError, match="nowhere does not exist") as error:
        _cli(["compare", str(tmp_path / "nowhere"), str(runs[0]), "--out", str(out)])
    assert "\n" not in str(error.value)
    with pytest.raises(OpticalError, match="--low and --high share el"):
        _cli(["compare", str(runs[0]), "--out", str(out), "--low", "el", "--high", "el,de"])


def test_cli_defaults_mirror_the_statistics_defaults():
    from optical.eval import stats

    assert (compare_cli.DEFAULT_RESAMPLES, compare_cli.DEFAULT_SEED) == (stats.DEFAULT_RESAMPLES, stats.DEFAULT_SEED)
