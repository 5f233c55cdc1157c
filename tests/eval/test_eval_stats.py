"""Paired randomisation test, bootstrap CIs, effect size, Holm, seeds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from optical.errors import OpticalError
from optical.eval.stats import (
    Sample,
    StatsSettings,
    aligned_values,
    average_over_seeds,
    bootstrap_ci,
    bootstrap_difference_ci,
    bootstrap_p_value,
    cohens_dz,
    compare,
    holm,
    holm_family,
    randomisation_test,
    resource_gap,
    seed_and_query_bootstrap,
    summarize,
)


def paired(a, b, name_a, name_b, measure, n_resamples=10_000, seed=0):
    """One-seed systems compared by the policy."""
    return compare(Sample(name_a, (a,)), Sample(name_b, (b,)), measure, StatsSettings(n_resamples, seed))


def test_exact_randomisation_matches_hand_computation():
    # Signs of (1, 2, 3): only +++ and --- reach |sum| >= 6 -> p = 2/8.
    assert randomisation_test([1.0, 2.0, 3.0]) == pytest.approx(0.25)
    # Zero differences do not change the statistic or the count of patterns that matter.
    assert randomisation_test([0.0, 1.0, 0.0, 2.0, 3.0]) == pytest.approx(0.25)
    # (1, 1, -1): |sum| = 1; patterns with |sum| >= 1 are all 8 (sums are odd) -> p = 1.
    assert randomisation_test([1.0, 1.0, -1.0]) == pytest.approx(1.0)


def test_monte_carlo_agrees_with_full_enumeration():
    diffs = np.random.default_rng(0).normal(0.3, 1.0, size=17)  # 17 non-zero: above the exact limit
    observed = abs(diffs.sum())
    exact = np.mean([abs(np.dot(signs, diffs)) >= observed - 1e-12 for signs in itertools.product((1, -1), repeat=17)])
    sampled = randomisation_test(diffs, n_resamples=20_000, seed=1)
    assert sampled == pytest.approx(exact, abs=0.015)
    assert randomisation_test(diffs, n_resamples=2000, seed=4) == randomisation_test(diffs, n_resamples=2000, seed=4)


def test_identical_systems_give_p_one_and_a_ci_around_zero():
    values = {f"q{i}": v for i, v in enumerate(np.random.default_rng(2).uniform(size=50))}
    comparison = paired(values, dict(values), "a", "b", "AP", n_resamples=500)
    assert comparison.p_value == 1.0 and comparison.p_holm == 1.0 and not comparison.significant
    assert comparison.ci_low <= 0.0 <= comparison.ci_high
    assert (comparison.wins, comparison.ties, comparison.losses) == (0, 50, 0)
    assert comparison.effect_size == 0.0


def test_a_clear_shift_gives_a_small_p():
    rng = np.random.default_rng(3)
    base = rng.uniform(size=200)
    better = base + 0.1 + rng.normal(0, 0.05, size=200)
    a = {f"q{i}": float(v) for i, v in enumerate(better)}
    b = {f"q{i}": float(v) for i, v in enumerate(base)}
    comparison = paired(a, b, "better", "base", "RR@10", n_resamples=2000, seed=0)
    assert comparison.p_value == pytest.approx(1 / 2001)  # no resample reaches the observed shift
    assert comparison.significant
    assert 0.08 < comparison.ci_low < comparison.diff < comparison.ci_high < 0.12
    assert comparison.diff == pytest.approx(comparison.mean_a - comparison.mean_b)
    assert comparison.effect_size == pytest.approx(np.mean(better - base) / np.std(better - base, ddof=1))
    assert comparison.wins > 190 and comparison.wins + comparison.ties + comparison.losses == 200


def test_mismatched_queries_are_refused():
    with pytest.raises(OpticalError, match="different queries"):
        paired({"q1": 1.0, "q2": 0.0}, {"q1": 1.0, "q3": 0.0}, "a", "b", "AP")


def test_holm_on_known_p_values():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.001, 0.2, 0.01, 0.04]) == pytest.approx([0.004, 0.2, 0.03, 0.08])
    assert holm([0.9, 0.3]) == pytest.approx([0.9, 0.6])
    assert holm([0.8, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


def test_holm_family_sets_significance_from_the_adjusted_p_and_names_the_family():
    rng = np.random.default_rng(4)
    base = {f"q{i}": float(v) for i, v in enumerate(rng.uniform(size=30))}
    shifted = {q: v + 0.5 for q, v in base.items()}
    family = [
        paired(shifted, base, "a", "b", "AP", n_resamples=300),
        paired(base, dict(base), "a", "b", "AP", n_resamples=300),
    ]
    corrected = holm_family(family, "two tests")
    assert [c.p_holm for c in corrected] == pytest.approx(holm([c.p_value for c in family]))
    assert {c.family for c in corrected} == {"two tests"}
    assert [c.significant for c in corrected] == [True, False]


def test_bootstrap_is_deterministic_with_a_seed():
    values = np.random.default_rng(5).normal(size=100)
    assert bootstrap_ci(values, 1000, seed=7) == bootstrap_ci(values, 1000, seed=7)
    assert bootstrap_ci(values, 1000, seed=7) != bootstrap_ci(values, 1000, seed=8)
    ci = bootstrap_ci(values, 2000, seed=7)
    assert ci.low < values.mean() < ci.high
    assert bootstrap_ci([0.5] * 10, 100) == bootstrap_ci([0.5] * 10, 100, seed=3)
    gap = bootstrap_difference_ci(values + 1.0, values, 1000, seed=0)
    assert gap.low < 1.0 < gap.high


def test_cohens_dz_undefined_cases():
    assert cohens_dz([0.3]) is None
    assert cohens_dz([0.2, 0.2, 0.2]) is None
    assert cohens_dz([1.0, 3.0]) == pytest.approx(2.0 / np.std([1.0, 3.0], ddof=1))


def test_seeds_are_averaged_per_query_before_pairing():
    seeds_a = [{"q1": 1.0, "q2": 0.0}, {"q1": 0.0, "q2": 0.0}]
    seeds_b = [{"q1": 0.0, "q2": 0.5}]
    assert average_over_seeds(seeds_a) == {"q1": 0.5, "q2": 0.0}
    comparison = compare(Sample("a", tuple(seeds_a)), Sample("b", tuple(seeds_b)), "AP", StatsSettings(100))
    assert comparison.n == 2  # queries, not seeds x queries
    assert comparison.diff == pytest.approx(0.0)
    cell = summarize(Sample("a", tuple(seeds_a)), StatsSettings(200))
    assert (cell.n_queries, cell.n_seeds, cell.mean, sorted(cell.seed_means)) == (2, 2, 0.25, [0.0, 0.5])
    assert cell.ci_low <= cell.mean <= cell.ci_high
    with pytest.raises(OpticalError, match="seed 1 of a"):
        average_over_seeds([{"q1": 1.0}, {"q2": 1.0}], "a")


def test_seed_and_query_ci_equals_the_query_bootstrap_with_one_seed():
    rng = np.random.default_rng(3)
    a = {f"q{i}": float(v) for i, v in enumerate(rng.random(200))}
    b = {f"q{i}": float(v) for i, v in enumerate(rng.random(200))}
    two_level = seed_and_query_bootstrap([a], [b], n_resamples=2000, seed=5).ci
    _, va, vb = aligned_values(a, b)
    query_only = bootstrap_ci(va - vb, n_resamples=2000, seed=5)
    assert two_level.low == pytest.approx(query_only.low, abs=1e-6)
    assert two_level.high == pytest.approx(query_only.high, abs=1e-6)


def test_seed_variance_widens_the_difference_ci():
    rng = np.random.default_rng(4)
    base = rng.random(500)
    # Two seeds of A, 0.1 apart on every query; B equals their average, so seed-averaged A - B is 0.
    seeds_a = [{f"q{i}": float(v + 0.05) for i, v in enumerate(base)}, {f"q{i}": float(v - 0.05) for i, v in enumerate(base)}]
    b = {f"q{i}": float(v) for i, v in enumerate(base)}
    comparison = compare(Sample("a", tuple(seeds_a)), Sample("b", (b,)), "RR@10", StatsSettings(2000))
    assert comparison.diff == pytest.approx(0.0, abs=1e-12)
    # Query-only bootstrap of the seed averages would give a zero-width interval; seeds make it +-0.05.
    assert comparison.ci_low == pytest.approx(-0.05, abs=1e-6) and comparison.ci_high == pytest.approx(0.05, abs=1e-6)


def test_seed_spread_counts_against_significance_and_the_p_value_agrees_with_the_ci():
    rng = np.random.default_rng(8)
    base = rng.random(500)
    b = Sample("b", ({f"q{i}": float(v) for i, v in enumerate(base)},))
    # A's seeds beat B by +0.12 and -0.08 on every query: the seed-averaged differences are all +0.02, which a
    # query-level test calls certain; a quarter of the two-level resamples draw the worse seed twice.
    seeds_a = tuple({f"q{i}": float(v + shift) for i, v in enumerate(base)} for shift in (0.12, -0.08))
    comparison = compare(Sample("a", seeds_a), b, "AP", StatsSettings(4000))
    assert comparison.diff == pytest.approx(0.02)
    assert randomisation_test([0.02] * 500, n_resamples=4000) < 0.001
    assert comparison.p_value == pytest.approx(0.5, abs=0.05)
    assert not comparison.significant and comparison.ci_low < 0 < comparison.ci_high
    # Seeds that agree: the same +0.02 is now significant, and its CI leaves out 0.
    steady = tuple(
        {f"q{i}": float(v + 0.02 + noise) for i, (v, noise) in enumerate(zip(base, rng.normal(0, 0.01, 500)))} for _ in range(3)
    )
    agreed = compare(Sample("a", steady), b, "AP", StatsSettings(4000))
    assert agreed.significant and agreed.ci_low > 0


def test_one_query_one_seed_apart_is_not_significant():
    # Alignment R@1 near the ceiling: B's third seed misses one of 1012 sentences, everything else ties. Resamples that
    # leave out that sentence or that seed differ by exactly 0, so the test must not call A "always ahead".
    a = tuple({f"s{i}": 1.0 for i in range(1012)} for _ in range(3))
    b = ({f"s{i}": 1.0 for i in range(1012)},) * 2 + ({f"s{i}": float(i != 7) for i in range(1012)},)
    comparison = compare(Sample("a", a), Sample("b", b), "R@1", StatsSettings(2000))
    assert comparison.p_value > 0.5 and not comparison.significant
    assert comparison.ci_low == 0.0


def test_bootstrap_p_value_is_never_zero_and_is_symmetric():
    assert bootstrap_p_value(np.full(999, 0.3)) == pytest.approx(2 / 1000)
    assert bootstrap_p_value(np.array([0.1, -0.2, 0.3, -0.4])) == bootstrap_p_value(np.array([-0.1, 0.2, -0.3, 0.4]))
    assert bootstrap_p_value(np.zeros(10)) == 1.0


def test_seed_variance_widens_a_cell_ci_and_the_seed_order_does_not_matter():
    rng = np.random.default_rng(6)
    base = rng.random(400)
    seeds = [{f"q{i}": float(v + shift) for i, v in enumerate(base)} for shift in (0.05, -0.05, 0.0)]
    one = summarize(Sample("a", (average_over_seeds(seeds),)), StatsSettings(1000))
    three = summarize(Sample("a", tuple(seeds)), StatsSettings(1000))
    assert three.mean == pytest.approx(one.mean)
    assert three.ci_high - three.ci_low > one.ci_high - one.ci_low
    assert summarize(Sample("a", tuple(reversed(seeds))), StatsSettings(1000)) == three
    b = Sample("b", ({f"q{i}": float(v) for i, v in enumerate(base)},))
    forward = compare(Sample("a", tuple(seeds)), b, "AP", StatsSettings(1000))
    assert compare(Sample("a", tuple(reversed(seeds))), b, "AP", StatsSettings(1000)) == forward


def test_resource_gap_with_one_and_with_several_seeds():
    rng = np.random.default_rng(7)
    low = {f"q{i}": float(v) for i, v in enumerate(rng.uniform(0.0, 0.5, 300))}
    high = {f"q{i}": float(v) for i, v in enumerate(rng.uniform(0.3, 0.8, 300))}
    gap = resource_gap(Sample("s", (low,)), Sample("s", (high,)), StatsSettings(1000))
    assert gap.gap == pytest.approx(gap.high_mean - gap.low_mean)
    assert gap.ci.low < gap.gap < gap.ci.high and gap.ci.low > 0.2
    shifted = {q: v + 0.1 for q, v in low.items()}
    seeded = resource_gap(Sample("s", (low, shifted)), Sample("s", (high, high)), StatsSettings(1000))
    assert seeded.gap == pytest.approx(gap.gap - 0.05)
    assert seeded.ci.high - seeded.ci.low > gap.ci.high - gap.ci.low


def test_pooling_needs_the_same_seeds_in_every_language():
    with pytest.raises(OpticalError, match="different numbers of seeds"):
        Sample.pooled("s", {"el": Sample("s", ({"q": 1.0},)), "th": Sample("s", ({"q": 1.0}, {"q": 0.0}))})


def test_copies_of_a_question_in_several_languages_count_once():
    """Two languages where every question scores the same: averaging per question gives one language's CI, while
    pooling the copies as independent queries would narrow it by about sqrt(2)."""
    rng = np.random.default_rng(3)
    ot = {f"q{i}": float(v) for i, v in enumerate(rng.random(200))}
    mse = {q: v - 0.05 + float(rng.normal(0, 0.2)) for q, v in ot.items()}
    one = compare(Sample("ot", (ot,)), Sample("mse", (mse,)), "RR@10", StatsSettings(2000))
    averaged = compare(
        Sample.question_means("ot", {"el": {0: ot}, "th": {0: ot}}),
        Sample.question_means("mse", {"el": {0: mse}, "th": {0: mse}}),
        "RR@10",
        StatsSettings(2000),
    )
    pooled = compare(
        Sample.pooled("ot", {"el": Sample("ot", (ot,)), "th": Sample("ot", (ot,))}),
        Sample.pooled("mse", {"el": Sample("mse", (mse,)), "th": Sample("mse", (mse,))}),
        "RR@10",
        StatsSettings(2000),
    )
    assert (averaged.n, averaged.diff, averaged.ci_low, averaged.ci_high) == (one.n, one.diff, one.ci_low, one.ci_high)
    assert pooled.n == 400 and pooled.ci_high - pooled.ci_low < 0.8 * (one.ci_high - one.ci_low)


def test_averaging_over_languages_pairs_seeds_by_id_not_by_rank():
    """Seed 0 is the good run in el and the bad one in th: paired by id the seed means cancel out (independent runs
    average), paired by rank (each language's seeds sorted by mean) they would not."""
    questions = [f"q{i}" for i in range(50)]
    good, bad = dict.fromkeys(questions, 0.9), dict.fromkeys(questions, 0.1)
    averaged = Sample.question_means("ot", {"el": {0: good, 1: bad}, "th": {0: bad, 1: good}})
    assert all(value == pytest.approx(0.5) for run in averaged.per_seed for value in run.values())


def test_averaging_over_languages_needs_shared_questions_and_seeds():
    with pytest.raises(OpticalError, match="share no question id"):
        Sample.question_means("s", {"el": {0: {"a": 1.0}}, "th": {0: {"b": 1.0}}})
    with pytest.raises(OpticalError, match="share no training seed"):
        Sample.question_means("s", {"el": {0: {"q": 1.0}}, "th": {1: {"q": 1.0}}})


def test_a_p_value_at_the_resampling_floor_is_printed_as_an_upper_bound():
    from optical.report.compare import p_holm_text

    rng = np.random.default_rng(0)
    base = rng.random(300)
    seeds_a = tuple({f"q{i}": float(v) + 0.5 + 0.01 * s for i, v in enumerate(base)} for s in range(3))
    b = Sample("b", ({f"q{i}": float(v) for i, v in enumerate(base)},))
    far = compare(Sample("a", seeds_a), b, "AP", StatsSettings(999))  # no resampled difference near 0
    assert far.p_value == pytest.approx(2 / 1000) and far.p_at_floor
    assert p_holm_text(far) == "≤ 0.002" and p_holm_text(far.with_holm(0.006)) == "≤ 0.006"
    # The same bootstrap with a difference that straddles 0: its floor is the same, its p far above it.
    noisy = tuple({q: v + rng.normal(0, 0.3) for q, v in seeds.items()} for seeds in seeds_a)
    centred = tuple({q: v - 0.5 for q, v in seeds.items()} for seeds in noisy)
    near = compare(Sample("a", centred), b, "AP", StatsSettings(999))
    assert near.p_floor == pytest.approx(2 / 1000) and near.p_value > 0.01 and not near.p_at_floor
    assert not p_holm_text(near).startswith("≤")
    # A bound is rounded up, so that it stays a bound: 2/10001 x 76 = 0.01520 prints as <= 0.016.
    assert p_holm_text(far.with_holm(2 / 10001 * 76)) == "≤ 0.016"
    # The sign-flip test (one seed each) enumerates up to EXACT_MAX_NONZERO differences: its p is exact, never a
    # floor. Beyond that it samples, and its floor is 1/(R+1).
    exact = compare(Sample("a", ({"q0": 1.0, "q1": 1.0},)), Sample("b", ({"q0": 0.0, "q1": 0.0},)), "AP", StatsSettings(99))
    assert exact.p_floor == 0.0 and not exact.p_at_floor
    sampled = compare(Sample("a", (seeds_a[0],)), b, "AP", StatsSettings(99))
    assert sampled.p_value == pytest.approx(1 / 100) and sampled.p_at_floor
