"""Paired significance tests, confidence intervals and effect sizes for IR.

Two systems are compared on the same queries: the unit is the query, and
everything here works on the per-query differences ``d_q = a_q - b_q``.

* **Paired randomisation test** (sign-flip permutation; Fisher 1935, argued
  for IR by Smucker, Allan & Carterette, CIKM 2007). Under the null hypothesis
  the two systems are exchangeable on each query, so every difference is
  equally likely to carry either sign. The two-sided p-value is the share of
  sign assignments whose mean difference is at least as far from 0 as the
  observed one. With ``m <= 16`` non-zero differences all ``2**m`` assignments
  are enumerated (exact p); otherwise ``n_resamples`` random assignments are
  drawn from a seeded generator and ``p = (hits + 1) / (n_resamples + 1)``
  (Phipson & Smyth 2010: never 0, valid for a sampled test).
  Example: differences ``(1, 2, 3)`` -> of the 8 sign patterns only
  ``+++`` and ``---`` reach ``|sum| >= 6``, so ``p = 2/8 = 0.25``.
* **Paired bootstrap CI** of the mean difference (percentile interval, Efron &
  Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13): resample the
  queries with replacement, take the mean each time, report the 2.5 and 97.5
  percentiles.
* **Two-level bootstrap test** when training seeds are involved: queries and
  seeds are resampled together (Davison & Hinkley 1997, sec. 3.8) and the
  two-sided p-value is the one that inverts the percentile interval,
  ``p = 2 * min(P*(diff* <= 0), P*(diff* >= 0))`` with the ``+1`` correction
  of Phipson & Smyth: the smallest level at which the equal-tailed interval
  leaves out 0 (Efron & Tibshirani 1993, sec. 16.4 and 15.4). Example: if
  A's two seeds beat B by +0.12 and -0.08 on every query, the seed-averaged
  differences are all +0.02 and a query-level test calls that certain, while
  a quarter of the two-level resamples draw A's worse seed twice: ``p ~ 0.5``.
* **Effect size** Cohen's ``d_z = mean(d) / sd(d)`` (sd with ``n - 1``), plus
  win / tie / loss counts of system A over system B.
* **Holm–Bonferroni** (Holm, *Scand. J. Statist.* 1979) over a family of
  p-values (e.g. one per language): sort ascending, ``p_(i) * (m - i + 1)``,
  made monotone and capped at 1. It controls the family-wise error rate.

A difference is *significant* only when ``p_holm < ALPHA`` as computed here.

The policy
----------
Every report of the project (``optical compare``, ``optical study report``,
the demo) gets its numbers from :func:`summarize`, :func:`compare`,
:func:`resource_gap` and :func:`holm_family`, so one pair of systems gets one
answer wherever it is printed:

* a system's values on a cell are a :class:`Sample`: per-query values, one
  mapping per training seed;
* its mean is the mean over queries of the seed-averaged values; its 95% CI is
  the query bootstrap with one seed and the two-level (queries x seeds)
  bootstrap with several;
* a paired difference between single-seed systems gets the randomisation
  p-value and the paired query bootstrap CI; when either system has several
  seeds, both its CI and its p-value come from one two-level (queries x
  seeds) bootstrap, so the seed-to-seed spread counts against significance
  and "significant" holds exactly when the 95% CI leaves out 0. (A
  randomisation test on seed-averaged values sees only the query spread: a
  difference can pass it while its two-level CI spans 0.) With few seeds the
  seed resampling understates the seed variance by the factor (S-1)/S, the
  usual small-sample bias of the bootstrap; more seeds are the cure;
* p-values are Holm-corrected within a family whose name travels with each
  comparison (:attr:`PairedComparison.family`) and is printed beside it.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from optical.errors import OpticalError

ALPHA = 0.05
DEFAULT_RESAMPLES = 10_000
DEFAULT_SEED = 0
#: Up to this many non-zero differences the randomisation test enumerates every sign pattern.
EXACT_MAX_NONZERO = 16
_BATCH = 1000
# Differences in the last bits of a float sum are not real differences.
_TOLERANCE = 1e-12

PerQuery = Mapping[str, float]


@dataclass(frozen=True)
class ConfidenceInterval:
    low: float
    high: float
    confidence: float = 0.95


@dataclass(frozen=True)
class PairedComparison:
    """System A against system B on one measure over the same queries.

    ``diff = mean_a - mean_b``; ``[ci_low, ci_high]`` its paired bootstrap CI;
    ``p_value`` the two-sided p (randomisation test with one seed per system,
    two-level bootstrap test with several); ``p_holm`` the p adjusted
    over its family (equal to ``p_value`` for a family of one);
    ``effect_size`` Cohen's d_z (None when undefined: fewer than 2 queries, or
    all differences equal and non-zero); ``wins/ties/losses`` count queries
    where A is above / equal to / below B; ``significant`` is
    ``p_holm < ALPHA``.
    """

    system_a: str
    system_b: str
    measure: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    p_holm: float
    effect_size: float | None
    wins: int
    ties: int
    losses: int
    significant: bool
    family: str = ""
    #: The smallest p-value the test can return with its resamples (0 for an exact test): a p at it means "this
    #: small or smaller", which more resamples would resolve.
    p_floor: float = 0.0

    @property
    def p_at_floor(self) -> bool:
        return self.p_floor > 0 and self.p_value <= self.p_floor * (1 + 1e-9)

    def with_holm(self, p_holm: float, family: str = "") -> PairedComparison:
        return replace(self, p_holm=p_holm, significant=p_holm < ALPHA, family=family or self.family)


def aligned_values(
    per_query_a: PerQuery, per_query_b: PerQuery, label_a: str = "A", label_b: str = "B"
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The two systems' values on the same queries, in sorted qid order.

    Refuses different query sets: a paired test on a partial overlap would
    silently drop the queries one system failed to answer.
    """
    qids_a, qids_b = set(per_query_a), set(per_query_b)
    if qids_a != qids_b:
        only_a = sorted(qids_a - qids_b)
        only_b = sorted(qids_b - qids_a)
        raise OpticalError(
            f"{label_a} and {label_b} were scored on different queries "
            f"({len(only_a)} only in {label_a}, e.g. {only_a[:3]}; {len(only_b)} only in {label_b}, e.g. {only_b[:3]}): "
            "evaluate both on the same split"
        )
    if not qids_a:
        raise OpticalError(f"{label_a} and {label_b} have no queries to compare")
    qids = sorted(qids_a)
    a = np.array([per_query_a[q] for q in qids], dtype=np.float64)
    b = np.array([per_query_b[q] for q in qids], dtype=np.float64)
    return qids, a, b


def _sign_flip_nonzero(diffs: Sequence[float] | np.ndarray) -> np.ndarray:
    """The differences a sign flip changes (zeros are left out of the statistic)."""
    diffs = np.asarray(diffs, dtype=np.float64)
    return diffs[np.abs(diffs) > _TOLERANCE]


def sign_flip_p_floor(diffs: Sequence[float] | np.ndarray, n_resamples: int) -> float:
    """The smallest p :func:`randomisation_test` can return for ``diffs``: 0 when it enumerates (the p is exact),
    else ``1 / (n_resamples + 1)``."""
    return 0.0 if len(_sign_flip_nonzero(diffs)) <= EXACT_MAX_NONZERO else 1 / (n_resamples + 1)


def randomisation_test(
    diffs: Sequence[float] | np.ndarray, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> float:
    """Two-sided paired randomisation (sign-flip) test of ``mean(diffs) == 0``.

    Exact enumeration for at most :data:`EXACT_MAX_NONZERO` non-zero
    differences, else Monte Carlo with ``n_resamples`` draws from
    ``numpy.random.default_rng(seed)``. Zero differences are unchanged by a
    sign flip and are left out of the statistic (they do not change it).
    """
    nonzero = _sign_flip_nonzero(diffs)
    observed = abs(nonzero.sum())
    threshold = observed - _TOLERANCE * max(1.0, observed)
    if len(nonzero) <= EXACT_MAX_NONZERO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(nonzero))))
        sums = signs @ nonzero if len(nonzero) else np.zeros(1)
        return float(np.mean(np.abs(sums) >= threshold))
    if n_resamples < 1:
        raise OpticalError(f"n_resamples must be at least 1, got {n_resamples}")
    # One random bit per difference; a set bit flips its sign, so a resampled sum is
    # total - 2 * (sum of the flipped differences). Bits come as random bytes, and a table holds,
    # for each group of 8 differences, the sum flipped by each of the 256 byte values.
    n_bytes = (len(nonzero) + 7) // 8
    groups = np.zeros(n_bytes * 8)
    groups[: len(nonzero)] = nonzero
    byte_bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float64)  # [256, 8]
    flipped_sum_table = byte_bits @ groups.reshape(n_bytes, 8).T  # [256, n_bytes]
    columns = np.arange(n_bytes)
    total = nonzero.sum()
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_resamples, _BATCH):
        batch = min(_BATCH, n_resamples - start)
        random_bytes = rng.integers(0, 256, size=(batch, n_bytes), dtype=np.uint8)
        flipped = flipped_sum_table[random_bytes, columns].sum(axis=1)
        hits += int(np.count_nonzero(np.abs(total - 2.0 * flipped) >= threshold))
    return (hits + 1) / (n_resamples + 1)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> ConfidenceInterval:
    """Percentile bootstrap CI of the mean of ``values`` (queries resampled with replacement).

    Applied to paired differences it is the paired bootstrap CI of the mean
    difference; applied to one system's values, the CI of its mean.
    """
    return _percentile_interval(_bootstrap_means(np.asarray(values, dtype=np.float64), n_resamples, seed), confidence)


@functools.lru_cache(maxsize=3)
def _resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """``[n_resamples, n]`` float32: how often each query is drawn in each resample (read-only).

    A resample's mean is then one row times the values, so a report that
    bootstraps many cells over the same queries (same seed, hence the same
    draws anyway) pays for the drawing once; one matrix-vector product per
    cell is far cheaper than gathering values by index.
    """
    rng = np.random.default_rng(seed)
    counts = np.empty((n_resamples, n), dtype=np.float32)
    for start in range(0, n_resamples, _BATCH):
        batch = min(_BATCH, n_resamples - start)
        drawn = rng.integers(0, n, size=(batch, n), dtype=np.int64) + np.arange(batch)[:, None] * n
        counts[start : start + batch] = np.bincount(drawn.ravel(), minlength=batch * n).reshape(batch, n)
    counts.flags.writeable = False
    return counts


def _bootstrap_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    if values.size == 0:
        raise OpticalError("cannot bootstrap an empty set of queries")
    if n_resamples < 1:
        raise OpticalError(f"n_resamples must be at least 1, got {n_resamples}")
    counts = _resample_counts(values.size, n_resamples, seed)
    # float32 products on the deviations from the mean only: the error stays ~1e-7 of the spread.
    centre = float(values.mean())
    deviations = (values - centre).astype(np.float32)
    return centre + (counts @ deviations).astype(np.float64) / values.size


def _percentile_interval(samples: np.ndarray, confidence: float) -> ConfidenceInterval:
    if not 0 < confidence < 1:
        raise OpticalError(f"confidence must be in (0, 1), got {confidence}")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return ConfidenceInterval(float(low), float(high), confidence)


def bootstrap_difference_ci(
    values_a: Sequence[float] | np.ndarray,
    values_b: Sequence[float] | np.ndarray,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> ConfidenceInterval:
    """Percentile bootstrap CI of ``mean(a) - mean(b)`` for two unpaired samples.

    Each sample is resampled on its own (Efron & Tibshirani 1993, ch. 8).
    Used for the gap between language groups; when the groups share
    translated queries (XQuAD), their positive correlation is ignored, which
    makes the interval wider, never narrower, than a paired one.
    """
    seed_a, seed_b = seed, seed + 1  # independent draws for the two samples
    means_a = _bootstrap_means(np.asarray(values_a, dtype=np.float64), n_resamples, seed_a)
    means_b = _bootstrap_means(np.asarray(values_b, dtype=np.float64), n_resamples, seed_b)
    return _percentile_interval(means_a - means_b, confidence)


def cohens_dz(diffs: Sequence[float] | np.ndarray) -> float | None:
    """Cohen's d_z: mean of the paired differences over their standard deviation (ddof 1).

    0.0 when every difference is 0; None when undefined (fewer than 2
    differences, or a zero spread around a non-zero mean).
    """
    diffs = np.asarray(diffs, dtype=np.float64)
    if diffs.size < 2:
        return None
    mean = float(diffs.mean())
    spread = float(diffs.std(ddof=1))
    if spread <= _TOLERANCE:
        return 0.0 if abs(mean) <= _TOLERANCE else None
    return mean / spread


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order.

    Example: ``holm([0.01, 0.04, 0.03])`` -> ``[0.03, 0.06, 0.06]``.
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def average_over_seeds(per_query_by_seed: Sequence[PerQuery], label: str = "system") -> dict[str, float]:
    """Per-query values averaged over the training seeds of one system.

    Why average before pairing: the question is whether the system — as its
    training procedure produces it, seeds included — beats another on the
    population of queries. The query is the unit of the test; the seed is a
    source of noise inside each system. Averaging gives one value per query
    (the seed noise shrinks with more seeds), and the paired test and the
    query bootstrap then keep ``n = number of queries``. Treating each
    (seed, query) as its own unit would count the same query several times,
    inflate ``n`` and understate the p-value.
    """
    if not per_query_by_seed:
        raise OpticalError(f"{label} has no seeds to average")
    qids = set(per_query_by_seed[0])
    for i, values in enumerate(per_query_by_seed[1:], start=1):
        if set(values) != qids:
            raise OpticalError(
                f"seed {i} of {label} was scored on different queries than seed 0: evaluate every seed on the same split"
            )
    return {q: float(np.mean([values[q] for values in per_query_by_seed])) for q in sorted(qids)}


def _two_level_means(
    per_query_by_seed: Sequence[PerQuery], qids: list[str], counts: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``[R]`` resampled means of one system: queries drawn by ``counts`` (shared across paired systems), seeds by ``rng``.

    In float64, block by block: these means feed :func:`bootstrap_p_value`,
    which asks whether a resampled difference is exactly 0 (e.g. a resample
    that left out the only queries where two systems differ). The float32
    shortcut of :func:`_bootstrap_means` leaves ~1e-10 of rounding there,
    enough to turn "no difference" into "always ahead".
    """
    values = np.array([[run[q] for q in qids] for run in per_query_by_seed], dtype=np.float64).T  # [n, S]
    # [R, S]: each resample's query-weighted mean of every seed.
    seed_means = np.empty((counts.shape[0], values.shape[1]))
    for start in range(0, counts.shape[0], _BATCH):
        seed_means[start : start + _BATCH] = counts[start : start + _BATCH].astype(np.float64) @ values / len(qids)
    n_seeds = values.shape[1]
    seed_weights = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=counts.shape[0]) / n_seeds
    return (seed_weights * seed_means).sum(axis=1)


@dataclass(frozen=True)
class BootstrapTest:
    """A two-level bootstrap's verdict on ``mean(a) - mean(b)``: its percentile CI and the p-value that inverts it."""

    ci: ConfidenceInterval
    p_value: float


def bootstrap_p_value(resampled_differences: np.ndarray) -> float:
    """Two-sided p-value of ``difference == 0`` that inverts the percentile bootstrap interval.

    ``p = min(1, 2 * (min(#{d* <= 0}, #{d* >= 0}) + 1) / (R + 1))``: the
    smallest level at which the equal-tailed percentile interval of the ``R``
    resampled differences leaves out 0 (Efron & Tibshirani 1993, sec. 15.4),
    with the ``+1`` of Phipson & Smyth (2010) so that it is never 0.

    >>> bootstrap_p_value(np.array([0.1, 0.2, 0.3, -0.1]))
    0.8
    """
    # Differences within float rounding of 0 (sums of the same values in another order) count as 0, on both sides.
    zero_band = _TOLERANCE * max(1.0, float(np.abs(resampled_differences).max(initial=0.0)))
    at_or_below = int(np.count_nonzero(resampled_differences <= zero_band))
    at_or_above = int(np.count_nonzero(resampled_differences >= -zero_band))
    return min(1.0, 2 * (min(at_or_below, at_or_above) + 1) / (resampled_differences.size + 1))


def seed_and_query_bootstrap(
    per_query_by_seed_a: Sequence[PerQuery],
    per_query_by_seed_b: Sequence[PerQuery],
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> BootstrapTest:
    """Two-level percentile bootstrap of the mean difference, over queries *and* training seeds: CI and p-value.

    Each resample draws the queries with replacement (one draw for both
    systems: the comparison stays paired) and, independently for each system,
    its seeds with replacement; the statistic is the mean over the drawn
    queries of (a averaged over its drawn seeds) minus (b likewise). Seed
    variance therefore widens the interval, which a query-only bootstrap of
    seed-averaged values does not show (two-stage bootstrap of hierarchical
    data: Davison & Hinkley, *Bootstrap Methods and their Application*, 1997,
    sec. 3.8). The p-value comes from the same resamples
    (:func:`bootstrap_p_value`). With one seed per system it is the paired
    query bootstrap. Example: two seeds of A that differ by 0.1 everywhere give
    an interval at least about as wide as that seed gap, however many queries
    there are.
    """
    averaged_a = average_over_seeds(per_query_by_seed_a, "system a")
    averaged_b = average_over_seeds(per_query_by_seed_b, "system b")
    qids, _, _ = aligned_values(averaged_a, averaged_b, "system a", "system b")
    if n_resamples < 1:
        raise OpticalError(f"n_resamples must be at least 1, got {n_resamples}")
    counts = _resample_counts(len(qids), n_resamples, seed)
    rng = np.random.default_rng([seed, 1])  # seed draws independent of the query draws
    differences = _two_level_means(per_query_by_seed_a, qids, counts, rng) - _two_level_means(
        per_query_by_seed_b, qids, counts, rng
    )
    return BootstrapTest(_percentile_interval(differences, confidence), bootstrap_p_value(differences))


@dataclass(frozen=True)
class StatsSettings:
    """The knobs of the policy: resamples and seed of every bootstrap and randomisation test."""

    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED


@dataclass(frozen=True)
class Sample:
    """One system's per-query values of one measure on one scope, one mapping per training seed (any order)."""

    system: str
    per_seed: tuple[PerQuery, ...]

    def __post_init__(self) -> None:
        # Seeds in a canonical order (by mean, then values): the bootstrap draws seeds by position and float sums
        # depend on order, and no number may depend on the order in which a report happened to list the runs.
        # Sorting every seed's items is only needed to break a tie of means, so it is done only then.
        means = [float(np.mean(list(run.values()))) for run in self.per_seed]
        if len(set(means)) == len(means):
            canonical = [run for _, run in sorted(zip(means, self.per_seed), key=lambda pair: pair[0])]
        else:
            canonical = [run for _, run in sorted(zip(means, self.per_seed), key=lambda pair: (pair[0], sorted(pair[1].items())))]
        object.__setattr__(self, "per_seed", tuple(canonical))

    @property
    def n_seeds(self) -> int:
        return len(self.per_seed)

    def averaged(self) -> dict[str, float]:
        return average_over_seeds(self.per_seed, self.system)

    @classmethod
    def pooled(cls, system: str, parts: Mapping[str, Sample]) -> Sample:
        """The samples of several languages as one, query ids prefixed ``<lang>/``; every part needs the same seeds.

        >>> a = Sample("ot", ({"q1": 1.0}, {"q1": 0.0}))
        >>> Sample.pooled("ot", {"el": a, "th": a}).per_seed  # seeds in canonical order: by mean
        ({'el/q1': 0.0, 'th/q1': 0.0}, {'el/q1': 1.0, 'th/q1': 1.0})
        """
        counts = {part.n_seeds for part in parts.values()}
        if len(counts) != 1:
            raise OpticalError(f"{system}: the pooled languages have different numbers of seeds ({sorted(counts)})")
        per_seed = tuple(
            {f"{lang}/{qid}": value for lang, part in parts.items() for qid, value in part.per_seed[i].items()}
            for i in range(counts.pop())
        )
        return cls(system, per_seed)

    @classmethod
    def question_means(cls, system: str, parts: Mapping[str, Mapping[int | None, PerQuery]]) -> Sample:
        """Languages that ask the same questions (XQuAD's ids in every language) as one sample of questions:
        ``parts[lang][seed]`` holds a language's per-query values of one training seed; per seed, each question's
        mean over the languages. Only seeds every language has, and questions every one of those runs has, count.

        The same question in several languages is one unit, not several: its values there are correlated (the
        question is easy or hard everywhere), so resampling the language copies as independent queries, as
        :meth:`pooled` does, would narrow the CI. Averaging first makes the policy's query bootstrap a cluster
        bootstrap over questions. Seeds pair by their id: the runs of different languages are independent
        trainings, and pairing them by id (not by rank, which would pair every language's worst seed) keeps them so.

        >>> el = {0: {"q1": 1.0, "q2": 0.0}, 1: {"q1": 0.0, "q2": 0.0}}
        >>> th = {0: {"q1": 0.5, "q3": 1.0}, 1: {"q1": 1.0, "q3": 1.0}}
        >>> Sample.question_means("ot", {"el": el, "th": th}).per_seed  # seeds in canonical order: by mean
        ({'q1': 0.5}, {'q1': 0.75})
        """
        seeds = sorted(set.intersection(*(set(by_seed) for by_seed in parts.values())), key=lambda s: -1 if s is None else s)
        if not seeds:
            raise OpticalError(f"{system}: the languages {', '.join(parts)} share no training seed; nothing to average")
        runs = [by_seed[seed] for by_seed in parts.values() for seed in seeds]
        questions = sorted(set.intersection(*(set(run) for run in runs)))
        if not questions:
            raise OpticalError(f"{system}: the languages {', '.join(parts)} share no question id; nothing to average")
        per_seed = tuple(
            {q: float(np.mean([by_seed[seed][q] for by_seed in parts.values()])) for q in questions} for seed in seeds
        )
        return cls(system, per_seed)


@dataclass(frozen=True)
class CellStats:
    """A system's mean on one cell and its 95% CI (query bootstrap, or queries x seeds with several seeds)."""

    n_queries: int
    n_seeds: int
    mean: float
    ci_low: float
    ci_high: float
    seed_means: tuple[float, ...]


def summarize(sample: Sample, settings: StatsSettings = StatsSettings()) -> CellStats:
    """Mean and 95% CI of one system on one cell, by the policy of this module.

    >>> cell = summarize(Sample("ot", ({"a": 0.0, "b": 1.0},)), StatsSettings(n_resamples=200))
    >>> cell.mean, cell.n_seeds
    (0.5, 1)
    """
    averaged = sample.averaged()
    qids = list(averaged)
    values = np.array(list(averaged.values()))
    if sample.n_seeds == 1:
        ci = bootstrap_ci(values, settings.n_resamples, settings.seed)
    else:
        counts = _resample_counts(len(qids), settings.n_resamples, settings.seed)
        means = _two_level_means(sample.per_seed, qids, counts, np.random.default_rng([settings.seed, 1]))
        ci = _percentile_interval(means, 0.95)
    return CellStats(
        n_queries=len(qids),
        n_seeds=sample.n_seeds,
        mean=float(values.mean()),
        ci_low=ci.low,
        ci_high=ci.high,
        seed_means=tuple(float(np.mean(list(v.values()))) for v in sample.per_seed),
    )


def compare(a: Sample, b: Sample, measure: str, settings: StatsSettings = StatsSettings()) -> PairedComparison:
    """System A against system B on one measure, by the policy of this module (a family of one until :func:`holm_family`)."""
    _, values_a, values_b = aligned_values(a.averaged(), b.averaged(), a.system, b.system)
    diffs = values_a - values_b
    if max(a.n_seeds, b.n_seeds) == 1:
        p_value = randomisation_test(diffs, settings.n_resamples, settings.seed)
        ci = bootstrap_ci(diffs, settings.n_resamples, settings.seed)
        p_floor = sign_flip_p_floor(diffs, settings.n_resamples)
    else:
        two_level = seed_and_query_bootstrap(a.per_seed, b.per_seed, settings.n_resamples, settings.seed)
        ci, p_value = two_level.ci, two_level.p_value
        p_floor = 2 / (settings.n_resamples + 1)  # bootstrap_p_value with no resampled difference across 0
    return PairedComparison(
        system_a=a.system,
        system_b=b.system,
        measure=measure,
        n=int(diffs.size),
        mean_a=float(values_a.mean()),
        mean_b=float(values_b.mean()),
        diff=float(diffs.mean()),
        ci_low=ci.low,
        ci_high=ci.high,
        p_value=p_value,
        p_holm=p_value,
        effect_size=cohens_dz(diffs),
        wins=int(np.count_nonzero(diffs > _TOLERANCE)),
        ties=int(np.count_nonzero(np.abs(diffs) <= _TOLERANCE)),
        losses=int(np.count_nonzero(diffs < -_TOLERANCE)),
        significant=p_value < ALPHA,
        p_floor=p_floor,
    )


def resamples_for_family(family_size: int, alpha: float = ALPHA) -> int:
    """Fewest resamples with which a resampled test can reach ``p_holm < alpha`` in a family of ``family_size``.

    A bootstrap p-value is at least ``2 / (R + 1)`` (:func:`bootstrap_p_value`)
    and Holm multiplies the smallest p by the family size ``m``, so nothing
    can pass unless ``2m / (R + 1) < alpha``.

    >>> resamples_for_family(20), resamples_for_family(400)
    (800, 16000)
    """
    return math.floor(2 * family_size / alpha + 1e-9)  # the smallest R with 2m / (R + 1) < alpha


def holm_family(comparisons: Sequence[PairedComparison], family: str) -> list[PairedComparison]:
    """The comparisons Holm-corrected as one family, each carrying the family's name."""
    adjusted = holm([c.p_value for c in comparisons])
    return [c.with_holm(p, family) for c, p in zip(comparisons, adjusted)]


@dataclass(frozen=True)
class GapStats:
    """``high - low``: a system's mean on the high-resource queries minus the low-resource ones, with its 95% CI."""

    low_mean: float
    high_mean: float
    gap: float
    ci: ConfidenceInterval


def resource_gap(low: Sample, high: Sample, settings: StatsSettings = StatsSettings()) -> GapStats:
    """``mean(high) - mean(low)`` with a 95% CI that resamples each group on its own (unpaired).

    The groups hold different queries (or the same questions in other
    languages, whose positive correlation is ignored: the interval is wider,
    never narrower, than a paired one). With several seeds each group's
    resample also draws its seeds (two-level, as in :func:`summarize`).
    """
    low_avg, high_avg = low.averaged(), high.averaged()
    low_mean, high_mean = float(np.mean(list(low_avg.values()))), float(np.mean(list(high_avg.values())))
    if max(low.n_seeds, high.n_seeds) == 1:
        ci = bootstrap_difference_ci(list(high_avg.values()), list(low_avg.values()), settings.n_resamples, settings.seed)
    else:
        means = []
        for offset, sample, qids in ((0, high, list(high_avg)), (1, low, list(low_avg))):
            counts = _resample_counts(len(qids), settings.n_resamples, settings.seed + offset)
            means.append(_two_level_means(sample.per_seed, qids, counts, np.random.default_rng([settings.seed + offset, 1])))
        ci = _percentile_interval(means[0] - means[1], 0.95)
    return GapStats(low_mean, high_mean, high_mean - low_mean, ci)


@dataclass(frozen=True)
class SpectrumPoint:
    """One language on the resource spectrum: how well the zero-shot encoder knows it (``level``) and a paired
    difference between two systems on it (the policy's :func:`compare`, seeds included where there are several)."""

    lang: str
    level: float
    comparison: PairedComparison


class _Verdict:
    """What a difference's 95% CI (``ci``, a field of the dataclass that mixes this in) says."""

    ci: ConfidenceInterval

    @property
    def verdict(self) -> str:
        """``ahead``, ``behind`` or ``level``: whether the CI lies above 0, below 0, or spans it."""
        return "ahead" if self.ci.low > 0 else "behind" if self.ci.high < 0 else "level"


@dataclass(frozen=True)
class SpectrumBand(_Verdict):
    """The fitted difference at one level, with its 95% CI over resampled languages, and what it says."""

    level: float
    fitted: float
    ci: ConfidenceInterval


@dataclass(frozen=True)
class SpectrumSegment(_Verdict):
    """A stretch of the spectrum: the mean of its languages' differences, with a 95% CI from resampling them.

    ``low`` and ``high`` are its lowest and highest zero-shot level; ``at_ceiling`` marks the segment of the
    languages at or above the ceiling, where the measure leaves a method little room.
    """

    languages: tuple[str, ...]
    low: float
    high: float
    at_ceiling: bool
    mean: float
    ci: ConfidenceInterval


#: Fewest languages a spectrum segment holds, a lower bound. The percentile CI of a mean resampled from n languages
#: leaves 0 out whenever all n differences share a sign, which chance alone does with probability 2^(1-n): under 0.05
#: only from n = 6 (and a percentile bootstrap of a few values covers less than 95% besides).
SEGMENT_MIN_LANGUAGES = 6


def spectrum_segments(
    points: Sequence[SpectrumPoint], ceiling: float, settings: StatsSettings = StatsSettings(), parts: int = 3
) -> tuple[SpectrumSegment, ...]:
    """Where on the spectrum A is ahead, level or behind, without assuming the shape of the dependence.

    A straight line cannot say "ahead in the middle, level at both ends", which is the shape distillation gains
    are expected to take (nothing to learn from where the encoder cannot read the script, nothing to gain where it
    is at the ceiling). So the languages below ``ceiling`` are cut by zero-shot level into ``parts`` groups of
    (near) equal size, and those at or above it form one more; each segment's mean of per-language differences gets
    a percentile CI from resampling its languages with replacement (the unit is the language, as in
    :func:`spectrum_trend`); the CIs are pointwise, not corrected across segments. Segments hold
    :data:`SEGMENT_MIN_LANGUAGES` languages or more: with too few at the ceiling those join the highest segment, with
    too few below it every language forms one segment, and fewer below-ceiling languages mean fewer parts. Languages
    tied in level at a cut between parts are split by language code. Lowest level first.

    >>> cmp = lambda d: PairedComparison("a", "b", "m", 1, d, 0, d, d, d, 1, 1, None, 0, 0, 0, False)
    >>> levels = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6] + [1.0] * 6
    >>> points = [SpectrumPoint(f"l{i:02d}", x, cmp(0.1 if x < 0.9 else 0.0)) for i, x in enumerate(levels)]
    >>> [(s.languages[0], s.verdict, s.at_ceiling) for s in spectrum_segments(points, 0.99, StatsSettings(200))]
    [('l00', 'ahead', False), ('l06', 'level', True)]
    """
    if parts < 1:
        raise OpticalError(f"a spectrum needs at least 1 part below the ceiling, got {parts}")
    _check_levels(points)
    ordered = sorted(points, key=lambda p: (p.level, p.lang))
    below = [p for p in ordered if p.level < ceiling]
    top = [p for p in ordered if p.level >= ceiling]
    if len(top) < SEGMENT_MIN_LANGUAGES:
        below, top = ordered, []
    if len(below) < SEGMENT_MIN_LANGUAGES:
        below, top = [], ordered
    if not below and len(top) < SEGMENT_MIN_LANGUAGES:
        return ()
    parts = min(parts, len(below) // SEGMENT_MIN_LANGUAGES)
    groups = [[below[i] for i in part] for part in np.array_split(np.arange(len(below)), parts)] if below else []
    groups += [top] if top else []
    rng = np.random.default_rng([settings.seed, 11])
    segments = []
    for group in groups:
        diffs = np.array([p.comparison.diff for p in group], dtype=float)
        means = diffs[rng.integers(0, len(diffs), (settings.n_resamples, len(diffs)))].mean(axis=1)
        segments.append(
            SpectrumSegment(
                languages=tuple(p.lang for p in group),
                low=float(group[0].level),
                high=float(group[-1].level),
                at_ceiling=group[0].level >= ceiling,
                mean=float(diffs.mean()),
                ci=_percentile_interval(means, 0.95),
            )
        )
    return tuple(segments)


@dataclass(frozen=True)
class SpectrumTrend:
    """A straight line through the per-language differences against the zero-shot level on the headroom scale
    (:func:`headroom_scale`), with its bootstrap CIs.

    ``slope`` > 0: the difference grows with how well the encoder knows the language (A gains more where the
    encoder is strong); < 0: A gains more where it is weak. ``bands`` are the fitted values at the levels of the
    languages (each distinct level once, lowest first: the band is as dense as the languages are), each with a
    pointwise 95% CI.
    """

    n_languages: int
    slope: float
    slope_ci: ConfidenceInterval
    intercept: float
    bands: tuple[SpectrumBand, ...]


#: The distance from the top at which the headroom scale stops stretching: a level of 1.0 sits at 2 on it, 0.99 at
#: 1.7. Within 0.01 of 1.0 alignment leaves a method no room (the report's ceiling), so spreading those languages
#: further would hand the crowd there the fit's leverage for differences of a sentence or two.
HEADROOM_FLOOR = 1e-2


def headroom_scale(level: float | np.ndarray) -> np.ndarray:
    """``-log10(1 + HEADROOM_FLOOR - level)``: 0 at level 0, about 1 at 0.9, 1.7 at 0.99 and 2 at 1.0.

    The scale the spectrum is fitted and drawn on. An encoder knows most languages to within 0.05 of the top and a
    few far below it; on the raw level a line through them is steered by those few (their leverage), while on this
    scale each tenfold step towards the top weighs about the same, down to :data:`HEADROOM_FLOOR`.

    >>> [round(float(x), 2) for x in headroom_scale(np.array([0.0, 0.9, 0.99, 1.0]))]
    [-0.0, 0.96, 1.7, 2.0]
    """
    return -np.log10(1 + HEADROOM_FLOOR - np.asarray(level, dtype=float))


def _check_levels(points: Sequence[SpectrumPoint]) -> None:
    """Zero-shot levels are rates in [0, 1] (beyond, the headroom scale is undefined)."""
    for point in points:
        if not 0.0 <= point.level <= 1.0:
            raise OpticalError(f"zero-shot level of {point.lang} is {point.level}: expected a rate in [0, 1]")


def level_from_headroom(position: float | np.ndarray) -> np.ndarray:
    """The inverse of :func:`headroom_scale`."""
    return 1 + HEADROOM_FLOOR - 10.0 ** (-np.asarray(position, dtype=float))


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept (slope 0 where every x is equal)."""
    spread = float(((x - x.mean()) ** 2).sum())
    slope = 0.0 if spread == 0 else float(((x - x.mean()) * (y - y.mean())).sum() / spread)
    return slope, float(y.mean() - slope * x.mean())


def spectrum_trend(points: Sequence[SpectrumPoint], settings: StatsSettings = StatsSettings()) -> SpectrumTrend:
    """Fit ``difference = intercept + slope * headroom_scale(level)`` over languages, with a case-resampling bootstrap
    over languages (the slope: per tenfold step towards the ceiling, as from 0.9 to 0.99; :func:`headroom_scale`).

    Languages, not queries, are the unit: a resample draws languages with replacement and refits the line, so the CI
    says how much the trend depends on which languages were studied (Efron & Tibshirani 1993, ch. 9, bootstrapping
    pairs). Each language enters with its seed-averaged mean difference; the spread of those means (query and
    seed noise included) is what the resampling sees.

    >>> cmp = lambda d: PairedComparison("a", "b", "m", 1, d, 0, d, d, d, 1, 1, None, 0, 0, 0, False)
    >>> levels = [0.0, 0.5, 0.9, 0.99, 1.0]
    >>> points = [SpectrumPoint(f"l{i}", x, cmp(1 - float(headroom_scale(x)))) for i, x in enumerate(levels)]
    >>> trend = spectrum_trend(points, StatsSettings(200))
    >>> round(trend.slope, 6), round(trend.intercept, 6), trend.bands[0].verdict, trend.bands[-1].verdict
    (-1.0, 1.0, 'ahead', 'behind')
    """
    if len(points) < 3:
        raise OpticalError(f"a trend over the spectrum needs at least 3 languages, got {len(points)}")
    _check_levels(points)
    x = headroom_scale([p.level for p in points])
    y = np.array([p.comparison.diff for p in points], dtype=float)
    slope, intercept = _line(x, y)
    levels = np.unique([p.level for p in points])
    rng = np.random.default_rng([settings.seed, 7])
    slopes, fitted = np.empty(settings.n_resamples), np.empty((settings.n_resamples, len(levels)))
    for i in range(settings.n_resamples):
        draw = rng.integers(0, len(points), len(points))
        slopes[i], b = _line(x[draw], y[draw])
        fitted[i] = b + slopes[i] * headroom_scale(levels)
    bands = tuple(
        SpectrumBand(float(level), float(intercept + slope * headroom_scale(level)), _percentile_interval(fitted[:, j], 0.95))
        for j, level in enumerate(levels)
    )
    return SpectrumTrend(len(points), slope, _percentile_interval(slopes, 0.95), intercept, bands)
