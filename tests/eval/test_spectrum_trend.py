"""The trend of a paired difference over the resource spectrum (eval.stats.spectrum_trend)."""

from __future__ import annotations

import numpy as np
import pytest

from optical.errors import OpticalError
from optical.eval.stats import (
    Sample,
    SpectrumPoint,
    StatsSettings,
    compare,
    headroom_scale,
    level_from_headroom,
    spectrum_segments,
    spectrum_trend,
)

SETTINGS = StatsSettings(n_resamples=400)


def _point(lang: str, level: float, gain: float, rng: np.random.Generator) -> SpectrumPoint:
    """A language where system A is ahead of B by ``gain`` on average, over 200 noisy queries."""
    base = rng.uniform(0, 1, 200)
    a = {f"q{i}": float(v + gain + rng.normal(0, 0.05)) for i, v in enumerate(base)}
    b = {f"q{i}": float(v) for i, v in enumerate(base)}
    return SpectrumPoint(lang, level, compare(Sample("a", (a,)), Sample("b", (b,)), "m", SETTINGS))


def test_a_gain_that_shrinks_with_the_level_is_found_with_its_sign():
    rng = np.random.default_rng(0)
    levels = np.linspace(0.3, 1.0, 12)
    points = [_point(f"l{i}", level, 0.05 * (1 - headroom_scale(level)), rng) for i, level in enumerate(levels)]
    trend = spectrum_trend(points, SETTINGS)
    assert trend.n_languages == 12 and trend.slope_ci.high < 0 < -trend.slope
    assert trend.slope == pytest.approx(-0.05, abs=0.005)  # per unit of headroom
    verdicts = [band.verdict for band in trend.bands]
    assert verdicts[0] == "ahead" and verdicts[-1] == "behind"
    order = {"ahead": 0, "level": 1, "behind": 2}  # ahead at low levels, then (where a language sits there) level
    assert [order[v] for v in verdicts] == sorted(order[v] for v in verdicts)
    assert [band.level for band in trend.bands] == sorted(p.level for p in points)  # one band at each language's level


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


def test_segments_find_a_gain_in_the_middle_that_a_line_calls_level():
    """Nothing gained where the encoder cannot read the language or is at the ceiling, 0.1 in between: the segments
    say where; the straight line's slope sees no trend."""
    rng = np.random.default_rng(4)
    levels = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 1.0, 1.0, 1.0, 1.0, 0.995, 0.99]
    points = [_point(f"l{i:02d}", level, 0.1 if 0.4 < level < 0.99 else 0.0, rng) for i, level in enumerate(levels)]
    segments = spectrum_segments(points, 0.99, SETTINGS, parts=2)
    assert [(s.verdict, s.at_ceiling, len(s.languages)) for s in segments] == [
        ("level", False, 6),
        ("ahead", False, 6),
        ("level", True, 6),
    ]
    assert segments[1].mean == pytest.approx(0.1, abs=0.01) and (segments[1].low, segments[1].high) == (0.5, 0.9)
    assert spectrum_trend(points, SETTINGS).slope_ci.low < 0 < spectrum_trend(points, SETTINGS).slope_ci.high
    assert spectrum_segments(points, 0.99, SETTINGS, parts=2) == segments  # seeded: the same answer every time


def test_segments_too_small_to_resample_are_merged():
    rng = np.random.default_rng(5)
    levels = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 1.0, 1.0]
    two_at_ceiling = [_point(f"l{i:02d}", level, 0.0, rng) for i, level in enumerate(levels)]
    segments = spectrum_segments(two_at_ceiling, 0.99, SETTINGS)
    assert [len(s.languages) for s in segments] == [7, 7] and not any(s.at_ceiling for s in segments)
    five_below = [_point(f"l{i}", level, 0.0, rng) for i, level in enumerate([0.3, 0.4, 0.5, 0.6, 0.7] + [1.0] * 6)]
    (merged,) = spectrum_segments(five_below, 0.99, SETTINGS)
    assert len(merged.languages) == 11 and merged.low == 0.3 and not merged.at_ceiling
    assert spectrum_segments(five_below[:5], 0.99, SETTINGS) == ()
    with pytest.raises(OpticalError, match="at least 1 part below the ceiling, got 0"):
        spectrum_segments(five_below, 0.99, SETTINGS, parts=0)


def test_the_headroom_scale_spreads_the_levels_below_the_ceiling_and_not_the_ceiling():
    levels = np.array([0.0, 0.5, 0.9, 0.99, 0.999, 1.0])
    below, at_ceiling = np.diff(headroom_scale([0.0, 0.9, 0.99])), np.diff(headroom_scale([0.99, 1.0]))
    assert below == pytest.approx([1.0, 0.75], abs=0.05) and at_ceiling < 0.35  # the last 0.01 is not stretched
    assert level_from_headroom(headroom_scale(levels)) == pytest.approx(levels)
    rng = np.random.default_rng(6)
    with pytest.raises(OpticalError, match="zero-shot level of l2 is 1.5: expected a rate in"):
        spectrum_trend([_point(f"l{i}", level, 0.0, rng) for i, level in enumerate([0.2, 0.5, 1.5])], SETTINGS)


def test_three_parts_below_the_ceiling_take_in_too_few_ceiling_languages_and_keep_level_order():
    rng = np.random.default_rng(7)
    levels = list(np.linspace(0.2, 0.95, 20)) + [0.995, 1.0]
    points = [_point(f"l{i:02d}", level, 0.0, rng) for i, level in enumerate(levels)]
    segments = spectrum_segments(points[::-1], 0.99, SETTINGS)  # input order does not matter
    assert [len(s.languages) for s in segments] == [8, 7, 7] and not any(s.at_ceiling for s in segments)
    assert segments[-1].high == 1.0 and all(a.high <= b.low for a, b in zip(segments, segments[1:]))
