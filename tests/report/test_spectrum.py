"""The spectrum analysis and its figure, on samples made here (no study on disk, nothing rendered to a report)."""

from __future__ import annotations

import numpy as np
import pytest

from optical.eval.stats import Sample, StatsSettings
from optical.report.plots import save_figure
from optical.report.spectrum import analyse_spectrum, spectrum_figure, spectrum_paragraphs

SETTINGS = StatsSettings(n_resamples=300)


@pytest.fixture(scope="module")
def spectrum():
    """12 languages: ot gains over mse where the level is low, nothing where it is high; contrastive equals ot."""
    rng = np.random.default_rng(0)
    samples, levels = {}, {}
    for i, level in enumerate(np.linspace(0.4, 1.0, 12)):
        lang = f"l{i:02d}"
        base = rng.uniform(0, 1, 150)
        noise = lambda: rng.normal(0, 0.05, 150)  # noqa: E731
        gain = 0.3 * (1.0 - level)
        systems = {"mse": base + noise(), "ot": base + gain + noise(), "contrastive-both": base + gain + noise()}
        samples[lang] = {
            name: Sample(name, ({f"q{j}": float(v) for j, v in enumerate(values)},)) for name, values in systems.items()
        }
        levels[lang] = float(level)
    samples["l00"].pop("contrastive-both")  # a language without a system is left out of that pair only
    return analyse_spectrum(samples, levels, [("ot", "mse"), ("ot", "contrastive-both"), ("ot", "missing")], "R@1", SETTINGS)


def test_the_trend_and_the_counts_say_where_ot_gains(spectrum):
    by_pair = {(c.system_a, c.system_b): c for c in spectrum}
    assert set(by_pair) == {("ot", "mse"), ("ot", "contrastive-both")}  # no language has "missing"
    versus_mse = by_pair[("ot", "mse")]
    assert versus_mse.trend.slope_ci.high < 0 and versus_mse.trend.bands[0].verdict == "ahead"
    assert versus_mse.counts()["ahead"] >= 6 and versus_mse.counts()["behind"] == 0
    assert by_pair[("ot", "contrastive-both")].trend.n_languages == 11
    words = " ".join(spectrum_paragraphs(versus_mse))
    assert "shrinks with the zero-shot level" in words and "ot is ahead on the 6 languages at levels 0.400-0.673" in words
    assert [len(s.languages) for s in versus_mse.segments] == [6, 6]  # one language at the ceiling joins the top


def test_the_figure_fits_a_screen_and_labels_every_axis(spectrum, tmp_path):
    from PIL import Image

    fig = spectrum_figure(spectrum)
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes if ax.get_visible())
    width, height = Image.open(save_figure(fig, tmp_path / "spectrum.png")).size
    assert width <= 1600 and height <= 1000


def _alignment_run(lang: str, system: str, rate: float, rng: np.random.Generator):
    """FLORES alignment of 100 pairs, both directions, each pair found (R@1 = 1) with probability ``rate``."""
    from optical.eval.results import EvalRun, TaskResult

    tasks = {}
    for key, prefix in ((f"align_x2en.{lang}", lang), (f"align_en2x.{lang}", "en")):
        values = {f"{prefix}:{i}": float(rng.uniform() < rate) for i in range(100)}
        tasks[key] = TaskResult(key, lang, 100, "fp", {}, {"R@1": values})
    return EvalRun(system, system, "teacher", "test", "split-fp", tasks)


def _spectrum_study(n_languages: int, zero_shot_only: bool = False):
    """zero-shot, mse and ot on ``n_languages`` languages from barely known (0.1) to known (0.95): ot gains most
    where the zero-shot level is low (``zero_shot_only``: the first slice of a spectrum study, zero-shot alone)."""
    from pathlib import Path

    from optical.eval.results import ZERO_SHOT
    from optical.report.study.load import Record, StudyInputs

    rng = np.random.default_rng(3)
    records, entries = [], []
    for i, level in enumerate(np.linspace(0.1, 0.95, n_languages)):
        lang = f"x{i:02d}"
        systems = ((ZERO_SHOT, level), ("mse", level + 0.3 * (1 - level)), ("ot", level + 0.5 * (1 - level)))
        for method, rate in systems[:1] if zero_shot_only else systems:
            trained = method != ZERO_SHOT
            path = f"runs/{lang}-{method}"
            entries.append(
                {
                    "lang": lang,
                    "method": method,
                    "seed": 0 if trained else None,
                    "backbone": "tiny",
                    "domain": "news" if trained else None,
                    "budget": 2000 if trained else None,
                    "noise": 0.0 if trained else None,
                    "query_noises": [0.0],
                    "status": "done",
                    "path": path,
                }
            )
            run = _alignment_run(lang, method, float(rate), rng)
            args = (0, "tiny", "news", 2000, 0.0, 0.0) if trained else (None, "tiny", None, None, None, 0.0)
            records.append(Record(lang, method, *args, run))
    reference = {"backbone": "tiny", "domain": "news", "budget": 2000, "noise": 0.0, "query_noise": 0.0}
    manifest = {"study": "spectrum", "reference": reference, "resource_groups": {}, "config": {}, "runs": entries}
    return StudyInputs(Path("spectrum"), manifest, tuple(records), (), ())


def test_a_study_over_enough_languages_opens_with_the_spectrum(tmp_path):
    from optical.report.study.analysis import SPECTRUM_MIN_LANGUAGES, analyse_study
    from optical.report.study.figures import Figures
    from optical.report.study.write import render_study

    analysis = analyse_study(_spectrum_study(SPECTRUM_MIN_LANGUAGES), SETTINGS)
    pairs = {(c.system_a, c.system_b) for c in analysis.spectrum}
    assert pairs == {("ot", "mse"), ("mse", "zero-shot"), ("ot", "zero-shot")}
    versus_zero_shot = next(c for c in analysis.spectrum if c.system_b == "zero-shot" and c.system_a == "ot")
    assert versus_zero_shot.trend.slope < 0 and versus_zero_shot.trend.bands[0].verdict == "ahead"
    assert analysis.comparisons_json()["spectrum"][0]["languages"][0]["lang"] == "x00"
    markdown = render_study(analysis, Figures(tmp_path)).markdown()
    assert markdown.index("The resource spectrum") < markdown.index("Answer to the research question")
    assert (tmp_path / "plots/spectrum.ot-vs-kd.png").is_file() and "| x00 | - | - | 0." in markdown
    assert (tmp_path / "plots/spectrum.levels.png").is_file() and "The x-axis" not in markdown
    fewer = analyse_study(_spectrum_study(SPECTRUM_MIN_LANGUAGES - 1), SETTINGS)
    assert fewer.spectrum == () and "spectrum" not in fewer.comparisons_json() and not fewer.spectrum_levels


def test_a_zero_shot_slice_shows_the_x_axis_alone(tmp_path):
    from optical.report.study.analysis import SPECTRUM_MIN_LANGUAGES, analyse_study
    from optical.report.study.figures import Figures
    from optical.report.study.write import render_study

    analysis = analyse_study(_spectrum_study(SPECTRUM_MIN_LANGUAGES, zero_shot_only=True), SETTINGS)
    assert analysis.spectrum == () and len(analysis.spectrum_levels) == SPECTRUM_MIN_LANGUAGES
    levels = analysis.comparisons_json()["spectrum_levels"]
    assert [entry["level"] for entry in levels] == sorted(entry["level"] for entry in levels)
    markdown = render_study(analysis, Figures(tmp_path)).markdown()
    assert "the section holds the x-axis only" in markdown and (tmp_path / "plots/spectrum.levels.png").is_file()


def test_seed_noise_is_read_from_the_languages_with_several_seeds():
    """Three of 12 languages have 3 seeds whose ot means differ by 0.1 from seed to seed: the report says so beside
    the single-seed languages' CIs."""
    rng = np.random.default_rng(5)
    samples, levels = {}, {}
    for i, level in enumerate(np.linspace(0.2, 1.0, 12)):
        lang = f"s{i:02d}"
        base = rng.uniform(0, 1, 200)
        shifts = (-0.1, 0.0, 0.1) if i < 3 else (0.0,)
        samples[lang] = {
            "mse": Sample("mse", tuple({f"q{j}": float(v) for j, v in enumerate(base)} for _ in shifts)),
            "ot": Sample("ot", tuple({f"q{j}": float(v + 0.02 + s) for j, v in enumerate(base)} for s in shifts)),
        }
        levels[lang] = float(level)
    (comparison,) = analyse_spectrum(samples, levels, [("ot", "mse")], "R@1", SETTINGS)
    noise = comparison.seed_noise
    assert noise.languages == ("s00", "s01", "s02") and noise.seeds == 3
    assert noise.seed_sd == pytest.approx(0.1) and noise.single_seed_half_width == pytest.approx(0.0, abs=1e-9)
    words = " ".join(spectrum_paragraphs(comparison))
    assert "Seed noise: on the 3 languages with 3+ seeds (s00, s01, s02)" in words and "smaller than about 0.200" in words
