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
    assert "shrinks with the zero-shot level" in words and "ahead for zero-shot levels 0.400" in words


def test_the_figure_fits_a_screen_and_labels_every_axis(spectrum, tmp_path):
    from PIL import Image

    fig = spectrum_figure(spectrum)
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes if ax.get_visible())
    width, height = Image.open(save_figure(fig, tmp_path / "spectrum.png")).size
    assert width <= 1600 and height <= 1000
