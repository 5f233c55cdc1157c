"""The resource spectrum (issue 27): does a method's advantage depend on how well the encoder knows the language?

Analysis first, rendering after (as everywhere in :mod:`optical.report`): :func:`analyse_spectrum` turns each
language's per-query samples into typed results (one :class:`SpectrumComparison` per pair of systems: every
language's paired difference by the statistics policy of :mod:`optical.eval.stats`, and the trend of those
differences over the zero-shot level with its bootstrap CI over languages); :func:`spectrum_figure` draws them and
:func:`spectrum_paragraphs` says them in words. Nothing here reads files.

The x-axis is the zero-shot model's alignment on the language (R@1 of FLORES-200 devtest translation retrieval,
the mean of both directions): how well the encoder knows the language before any distillation. FLORES alignment
saturates early (``shared/notes/alignment-saturation-2026-12.md``): many languages sit near 1.0 on it. The trend is
fitted, and the figures drawn, on a headroom scale (:func:`optical.eval.stats.headroom_scale`) that spreads the
languages below the ceiling without giving the crowd at it the fit's leverage; where a method is ahead is read from
segments of the spectrum; and the report says how many languages lie at the ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from optical.data.pretraining import cc100_gib, script
from optical.eval.results import ZERO_SHOT
from optical.eval.stats import (
    HEADROOM_FLOOR,
    SEGMENT_MIN_LANGUAGES,
    Sample,
    SpectrumPoint,
    SpectrumSegment,
    SpectrumTrend,
    StatsSettings,
    compare,
    headroom_scale,
    holm_family,
    level_from_headroom,
    spectrum_segments,
    spectrum_trend,
)
from optical.formatting import number

#: Zero-shot levels at or above this count as "at the ceiling" (alignment leaves nothing to gain there).
CEILING = 0.99

INTRODUCTION = (
    "Each point is one language: its x is how well the zero-shot encoder aligns it (FLORES-200 devtest R@1, the mean "
    "of x->en and en->x) and its y a paired difference on the same alignment (per FLORES pair, both directions "
    "averaged), with its 95% CI over pairs (and seeds where there are several); filled points and † are significant "
    "after Holm over the languages of that comparison. The line is a least-squares fit of the differences on the "
    "level's headroom scale, -log10(1.01 - level) (the x-axis: a step from 0.9 to 0.99 weighs about as much as one "
    "from 0 to 0.9, and the last 0.01 is not stretched further), its band a 95% CI from resampling languages; it "
    "gives the trend. Where a method is ahead is read from segments of the spectrum instead, which assume no shape: "
    "the languages below the ceiling in up to three equal-sized parts by zero-shot level, and those at the ceiling, "
    f"at least {SEGMENT_MIN_LANGUAGES} languages in each (fewer join a neighbour), each segment's mean difference with "
    "a 95% CI from resampling its languages, not corrected across segments (the horizontal bars). FLORES alignment "
    "saturates early: languages at the ceiling leave a method little room on this measure, so a level difference "
    "there is no evidence of equal alignment on harder tasks. Languages with one seed: their single-seed CIs hold "
    "query noise only, not the seed-to-seed spread."
)


@dataclass(frozen=True)
class SeedNoise:
    """How much of a single-seed difference is seed noise, read from the languages where both systems have several
    seeds: the spread a one-seed difference would have from seed to seed, against the CI a one-seed language gets
    from its queries alone.

    ``seed_sd`` is the median over those languages of sqrt(var_A + var_B), each variance over the system's per-seed
    means (seeds are independent trainings, so a single-seed difference varies by that much); ``single_seed_half_width``
    the median half-width of the 95% CI of the languages with one seed (None when every language has several)."""

    languages: tuple[str, ...]
    seeds: int
    seed_sd: float
    single_seed_half_width: float | None


@dataclass(frozen=True)
class SpectrumComparison:
    """System A against system B over the spectrum: every language's difference, the fitted trend, and the mean
    difference on each segment of the spectrum."""

    system_a: str
    system_b: str
    measure: str
    points: tuple[SpectrumPoint, ...]
    trend: SpectrumTrend
    segments: tuple[SpectrumSegment, ...]
    seed_noise: SeedNoise | None = None

    @property
    def family(self) -> str:
        return f"spectrum {self.system_a} vs {self.system_b}, {self.measure}"

    def counts(self) -> dict[str, int]:
        """Languages where A is significantly ahead of B, behind it, or neither (Holm over the languages)."""
        ahead = sum(p.comparison.significant and p.comparison.diff > 0 for p in self.points)
        behind = sum(p.comparison.significant and p.comparison.diff < 0 for p in self.points)
        return {"ahead": ahead, "behind": behind, "level": len(self.points) - ahead - behind}


def analyse_spectrum(
    samples: Mapping[str, Mapping[str, Sample]],
    levels: Mapping[str, float],
    pairs: Sequence[tuple[str, str]],
    measure: str,
    settings: StatsSettings = StatsSettings(),
) -> list[SpectrumComparison]:
    """One :class:`SpectrumComparison` per pair of ``pairs`` (system A, system B) over every language that has both.

    ``samples[lang][system]`` is an :class:`optical.eval.stats.Sample` of ``measure``; ``levels[lang]`` the zero-shot
    level. Each pair's per-language comparisons are one Holm family.
    """
    found = []
    for system_a, system_b in pairs:
        langs = [lang for lang in levels if system_a in samples.get(lang, {}) and system_b in samples.get(lang, {})]
        if len(langs) < 3:
            continue
        raw = [compare(samples[lang][system_a], samples[lang][system_b], measure, settings) for lang in langs]
        family = f"spectrum {system_a} vs {system_b}, {measure}"
        points = tuple(SpectrumPoint(lang, levels[lang], c) for lang, c in zip(langs, holm_family(raw, family)))
        noise = seed_noise({lang: (samples[lang][system_a], samples[lang][system_b]) for lang in langs}, points)
        trend, segments = spectrum_trend(points, settings), spectrum_segments(points, CEILING, settings)
        found.append(SpectrumComparison(system_a, system_b, measure, points, trend, segments, noise))
    return found


def seed_noise(pairs: Mapping[str, tuple[Sample, Sample]], points: Sequence[SpectrumPoint]) -> SeedNoise | None:
    """:class:`SeedNoise` of one comparison: ``pairs[lang]`` = (A's sample, B's sample); None without a language
    where both have two seeds or more.

    >>> a = Sample("ot", ({"q": 0.5}, {"q": 0.7}, {"q": 0.6}))
    >>> b = Sample("mse", ({"q": 0.5}, {"q": 0.5}, {"q": 0.5}))
    >>> noise = seed_noise({"dz": (a, b)}, [])
    >>> noise.languages, noise.seeds, round(noise.seed_sd, 3), noise.single_seed_half_width
    (('dz',), 3, 0.1, None)
    """
    spreads, seeds = {}, set()
    for lang, (a, b) in pairs.items():
        if a.n_seeds < 2 or b.n_seeds < 2:
            continue
        variances = [np.var([np.mean(list(run.values())) for run in sample.per_seed], ddof=1) for sample in (a, b)]
        spreads[lang] = float(np.sqrt(sum(variances)))
        seeds.add(min(a.n_seeds, b.n_seeds))
    if not spreads:
        return None
    single = [
        (p.comparison.ci_high - p.comparison.ci_low) / 2 for p in points if min(map(Sample.n_seeds.fget, pairs[p.lang])) == 1
    ]
    return SeedNoise(
        languages=tuple(sorted(spreads)),
        seeds=min(seeds),
        seed_sd=float(np.median(list(spreads.values()))),
        single_seed_half_width=float(np.median(single)) if single else None,
    )


def spectrum_paragraphs(comparison: SpectrumComparison) -> list[str]:
    """The answer in words for one comparison: the trend, where along the spectrum (the segments) A is ahead, level or
    behind, the per-language counts, and the seed noise."""
    trend, counts = comparison.trend, comparison.counts()
    a, b = comparison.system_a, comparison.system_b
    direction = "grows" if trend.slope_ci.low > 0 else "shrinks" if trend.slope_ci.high < 0 else "shows no clear trend"
    at_ceiling = sum(p.level >= CEILING for p in comparison.points)
    return [
        f"{a} − {b} on {comparison.measure} over {trend.n_languages} languages: the difference {direction} with the "
        f"zero-shot level (slope {number(trend.slope, signed=True)} [{number(trend.slope_ci.low, signed=True)}, "
        f"{number(trend.slope_ci.high, signed=True)}] per unit of headroom, about a tenfold step towards the top, "
        "95% CI over languages)."
        + (
            f" Along the spectrum, {a} is " + "; ".join(map(_segment_text, comparison.segments)) + "."
            if comparison.segments
            else ""
        ),
        f"Per language (Holm over the {trend.n_languages}): {a} ahead in {counts['ahead']}, behind in {counts['behind']}, "
        f"level in {counts['level']}. {at_ceiling} of the {trend.n_languages} languages start at or above "
        f"{CEILING} zero-shot, where the measure leaves little room.",
        *([_seed_noise_text(comparison.seed_noise)] if comparison.seed_noise else []),
    ]


def _segment_text(segment: SpectrumSegment) -> str:
    """E.g. ``ahead on the 23 languages at levels 0.006-0.871 (+0.012 [+0.004, +0.020])``."""
    where = (
        f"the {len(segment.languages)} at the ceiling ({number(segment.low)}-{number(segment.high)})"
        if segment.at_ceiling
        else f"the {len(segment.languages)} languages at levels {number(segment.low)}-{number(segment.high)}"
    )
    interval = f"[{number(segment.ci.low, signed=True)}, {number(segment.ci.high, signed=True)}]"
    return f"{segment.verdict} on {where} ({number(segment.mean, signed=True)} {interval})"


def _seed_noise_text(noise: SeedNoise) -> str:
    text = (
        f"Seed noise: on the {len(noise.languages)} languages with {noise.seeds}+ seeds ({', '.join(noise.languages)}), a "
        f"single seed's difference varies from seed to seed by a standard deviation of {number(noise.seed_sd)} "
        "(median over those languages)"
    )
    if noise.single_seed_half_width is None:
        return text + "."
    return text + (
        f", against a median 95% CI half-width of {number(noise.single_seed_half_width)} over pairs for the "
        "single-seed languages, whose CIs hold query noise only: a single-seed difference smaller than about "
        f"{number(2 * noise.seed_sd)} may be the seed's."
    )


#: Half the width added to a segment's bar on the spectrum figure, in headroom units (the x-axis).
_SEGMENT_PAD = 0.02
_LEVEL_TICKS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0)


def _headroom_axis(ax) -> None:
    """Put the x-axis (zero-shot level) on the headroom scale the trend is fitted on (as far from 0.9 to 0.99 as from
    0 to 0.9, so the crowd near the ceiling spreads out), ticked in levels, with a margin at both ends."""
    right = 1 + HEADROOM_FLOOR / 2  # beyond 1 + HEADROOM_FLOOR the scale is undefined: clip what is drawn past it
    ax.set_xscale("function", functions=(lambda level: headroom_scale(np.minimum(level, right)), level_from_headroom))
    ax.set_xlim(-0.03, right)
    ax.set_xticks(_LEVEL_TICKS, [f"{tick:g}" for tick in _LEVEL_TICKS])


def spectrum_figure(comparisons: Sequence[SpectrumComparison]):
    """One panel per comparison: each language's difference with its 95% CI against its zero-shot level, labelled
    with its code, the fitted line with its band, each segment's mean with its CI, and 0 (filled markers:
    significant after Holm)."""
    import matplotlib.pyplot as plt

    from optical.report.style import SCREEN, ZERO_LINE, method_colour

    columns = min(2, len(comparisons))
    rows = -(-len(comparisons) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(SCREEN[0] * 0.94, min(SCREEN[1] * 0.95, 4.3 * rows)), squeeze=False)
    for ax, comparison in zip(axes.flat, comparisons):
        points, colour = comparison.points, method_colour(comparison.system_b)
        for point in points:
            c = point.comparison
            ax.errorbar(
                point.level,
                c.diff,
                yerr=[[c.diff - c.ci_low], [c.ci_high - c.diff]],
                fmt="o",
                ms=4,
                color=colour,
                mfc=colour if c.significant else "white",
                elinewidth=0.8,
            )
            ax.annotate(point.lang, (point.level, c.diff), xytext=(3, 2), textcoords="offset points")
        bands = comparison.trend.bands
        ax.plot([b.level for b in bands], [b.fitted for b in bands], color="tab:red", lw=1.5, label="fitted line")
        ax.fill_between(
            [b.level for b in bands],
            [b.ci.low for b in bands],
            [b.ci.high for b in bands],
            color="tab:red",
            alpha=0.15,
            label="95% CI over languages",
        )
        for i, segment in enumerate(comparison.segments):
            # A segment whose languages share one level (the ceiling's 1.000) still gets a visible width.
            span = level_from_headroom(headroom_scale([segment.low, segment.high]) + [-_SEGMENT_PAD, _SEGMENT_PAD])
            ax.hlines(segment.mean, *span, color="tab:green", lw=2.5, label=None if i else "segment mean, 95% CI")
            ax.fill_between(span, segment.ci.low, segment.ci.high, color="tab:green", alpha=0.15)
        ax.axhline(0, **ZERO_LINE)
        _headroom_axis(ax)
        ax.set_title(f"{comparison.system_a} − {comparison.system_b} (filled: significant after Holm)")
        ax.set_xlabel("zero-shot alignment R@1 (mean of both directions; headroom scale)")
        ax.set_ylabel(f"difference in {comparison.measure}")
        ax.legend(loc="best")
    for ax in list(axes.flat)[len(comparisons) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def spectrum_json(comparisons: Sequence[SpectrumComparison]) -> list[dict]:
    """The spectrum as data: per comparison its trend and every language's level and difference."""
    return [
        {
            "system_a": c.system_a,
            "system_b": c.system_b,
            "measure": c.measure,
            "family": c.family,
            "slope": c.trend.slope,
            "slope_ci": [c.trend.slope_ci.low, c.trend.slope_ci.high],
            "intercept": c.trend.intercept,
            "seed_noise": None
            if c.seed_noise is None
            else {
                "languages": list(c.seed_noise.languages),
                "seeds": c.seed_noise.seeds,
                "seed_sd": c.seed_noise.seed_sd,
                "single_seed_half_width": c.seed_noise.single_seed_half_width,
            },
            "bands": [
                {"level": b.level, "fitted": b.fitted, "ci": [b.ci.low, b.ci.high], "verdict": b.verdict} for b in c.trend.bands
            ],
            "segments": [
                {
                    "languages": list(g.languages),
                    "low": g.low,
                    "high": g.high,
                    "at_ceiling": g.at_ceiling,
                    "mean": g.mean,
                    "ci": [g.ci.low, g.ci.high],
                    "verdict": g.verdict,
                }
                for g in c.segments
            ],
            "languages": [
                {
                    "lang": p.lang,
                    "level": p.level,
                    "script": script(p.lang),
                    "cc100_gib": cc100_gib(p.lang),
                    **{k: getattr(p.comparison, k) for k in ("diff", "ci_low", "ci_high", "p_holm")},
                }
                for p in c.points
            ],
        }
        for c in comparisons
    ]


def levels_json(levels: Mapping[str, float]) -> list[dict]:
    """The x-axis as data: each language's zero-shot level, script and CC-100 size, lowest level first."""
    return [
        {"lang": lang, "level": level, "script": script(lang), "cc100_gib": cc100_gib(lang)}
        for lang, level in sorted(levels.items(), key=lambda item: item[1])
    ]


#: Where a language outside CC-100 is drawn on the levels figure's log axis (below its smallest size, 0.1 GiB).
_OUTSIDE_CC100 = 0.03


def levels_figure(levels: Mapping[str, float]):
    """Each language's zero-shot level (x) against its CC-100 size (y, log; languages outside XLM-R's 100 in a band
    at the bottom), labelled with its code: how well the encoder knows a language beside how much of it the
    pre-training saw."""
    import matplotlib.pyplot as plt

    from optical.report.style import SCREEN, ZERO_SHOT_COLOUR

    fig, ax = plt.subplots(figsize=(SCREEN[0] * 0.94, SCREEN[1] * 0.6))
    for lang, level in levels.items():
        size = cc100_gib(lang)
        y = _OUTSIDE_CC100 if size is None else size
        ax.plot(level, y, "o", ms=4, color=ZERO_SHOT_COLOUR, mfc="white" if size is None else ZERO_SHOT_COLOUR)
        ax.annotate(lang, (level, y), xytext=(3, 2), textcoords="offset points")
    ax.set_yscale("log")
    _headroom_axis(ax)
    ax.axhline(_OUTSIDE_CC100 * 2, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("zero-shot alignment R@1 (FLORES-200 devtest, mean of both directions; headroom scale)")
    ax.set_ylabel("CC-100 size, GiB (log; open circles: not in CC-100)")
    ax.set_title(f"The x-axis: {len(levels)} languages")
    fig.tight_layout()
    return fig


def render_spectrum(doc, comparisons: Sequence[SpectrumComparison], levels: Mapping[str, float], figures) -> None:
    """The spectrum section: the x-axis (each language's zero-shot level beside its pre-training size), the figures
    (OT against the KD baselines, then every method against zero-shot), the answer in words, and one table row per
    language."""
    from optical.report.document import Heading, Image, Paragraph, Table

    doc.add(Heading(2, "The resource spectrum: does the advantage depend on how well the encoder knows the language?"))
    doc.add(Paragraph(INTRODUCTION))
    at_ceiling = sum(level >= CEILING for level in levels.values())
    doc.add(
        Paragraph(
            f"Zero-shot alignment was measured on {len(levels)} languages: from {number(min(levels.values()))} to "
            f"{number(max(levels.values()))}, {at_ceiling} of them at or above {CEILING}. " + pretraining_paragraph(levels)
        )
    )
    doc.add(
        Image(figures.save(levels_figure(levels), "plots/spectrum.levels.png"), "the x-axis: zero-shot level and CC-100 size")
    )
    if not comparisons:
        doc.add(Paragraph("No trained method has run on enough of these languages yet: the section holds the x-axis only."))
    groups = (
        ("ot-vs-kd", "OT against each KD baseline", [c for c in comparisons if c.system_b != ZERO_SHOT]),
        (
            "vs-zero-shot",
            "what distillation buys at each level: every method against zero-shot",
            [c for c in comparisons if c.system_b == ZERO_SHOT],
        ),
    )
    for slug, title, chosen in groups:
        if not chosen:
            continue
        doc.add(Image(figures.save(spectrum_figure(chosen), f"plots/spectrum.{slug}.png"), title))
        for comparison in chosen:
            for text in spectrum_paragraphs(comparison):
                doc.add(Paragraph(text))
    by_lang = {(c.system_a, c.system_b): {p.lang: p.comparison for p in c.points} for c in comparisons}
    header = ["lang", "script", "CC-100 GiB", "zero-shot level", *(f"{a} − {b}" for a, b in by_lang)]
    rows = []
    for lang in sorted(levels, key=levels.get):
        cells = [by_lang[pair].get(lang) for pair in by_lang]
        size = cc100_gib(lang)
        rows.append(
            [
                lang,
                script(lang) or "-",
                "-" if size is None else f"{size:g}",
                number(levels[lang]),
                *(_difference_cell(c) for c in cells),
            ]
        )
    doc.add(Table(header, rows))


def pretraining_paragraph(levels: Mapping[str, float]) -> str:
    """What the documented pre-training data says of the languages' zero-shot levels (script and CC-100 size are
    the table's columns; :mod:`optical.data.pretraining`)."""
    absent = sorted((lang for lang in levels if cc100_gib(lang) is None), key=levels.get)
    text = (
        "Script and CC-100 size (GiB; XLM-R's pre-training corpus, from which multilingual-e5 descends; Conneau et al. "
        f"2020, Table 6) are given per language. {len(absent)} of the {len(levels)} languages are not among XLM-R's 100"
    )
    if not absent:
        return text + "."
    low, high = min(levels[lang] for lang in absent), max(levels[lang] for lang in absent)
    return text + f" ({', '.join(absent)}); their zero-shot levels range from {number(low)} to {number(high)}."


def _difference_cell(comparison) -> str:
    if comparison is None:
        return "-"
    low, high = number(comparison.ci_low, signed=True), number(comparison.ci_high, signed=True)
    return f"{number(comparison.diff, signed=True)} [{low}, {high}]" + ("†" if comparison.significant else "")
