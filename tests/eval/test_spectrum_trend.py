"""The trend of a paired difference over the resource spectrum (eval.stats.spectrum_trend)."""

from __future__ import annotations

import numpy as np
import pytest

from optical.errors import OpticalError
from optical.eval.stats import Sample, SpectrumPoint, StatsSettings, compare, spectrum_trend

SETTINGS = StatsSettings(n_resamples=400)


def _point(lang: str, level: float, gain: float, rng: np.random.Generator) -> SpectrumPoint:
    """A language where system A is ahead of B by ``gain`` on average, over 200 noisy queries."""
    base = rng.uniform(0, 1, 200)
    a = {f"q{i}": float(v + gain + rng.normal(0, 0.05)) for i, v in enumerate(base)}
    b = {f"q{i}": float(v) for i, v in enumerate(base)}
    return SpectrumPoint(lang, level, compare(Sample("a", (a,)), Sample("b", (b,)), "m", SETTINGS))


def test_a_gain_that_shrinks_with_the_level_is_found_with_its_sign():
    rng = np.random.default_rng(0)
    points = [_point(f"l{i}", level, 0.2 * (0.65 - level), rng) for i, level in enumerate(np.linspace(0.3, 1.0, 12))]
    trend = spectrum_trend(points, SETTINGS)
    assert trend.n_languages == 12 and trend.slope_ci.high < 0 < -trend.slope
    assert trend.slope == pytest.approx(-0.2, abs=0.03)
    verdicts = [band.verdict for band in trend.bands]
    assert verdicts[0] == "ahead" and verdicts[-1] == "behind" and "level" in verdicts
    assert [band.level for band in trend.bands] == sorted(band.level for band in trend.bands)


def test_no_trend_gives_a_slope_ci_around_zero_and_the_same_answer_every_time():
    rng = np.random.default_rng(1)
    points = [_point(f"l{i}", level, 0.0, rng) for i, level in enumerate(np.linspace(0.3, 1.0, 10))]
    trend = spectrum_trend(points, SETTINGS)
    assert trend.slope_ci.low < 0 < trend.slope_ci.high
    assert all(band.verdict == "level" for band in trend.bands)
    assert spectrum_trend(points, SETTINGS) == trend


def test_too_few_languages_is_one_line():
    rng = np.random.default_rng(2)
    with pytest.raises(OpticalError, match="at least 3 languages, got 2"):
        spectrum_trend([_point("a", 0.5, 0.1, rng), _point("b", 0.9, 0.1, rng)], SETTINGS)
