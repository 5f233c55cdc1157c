"""``report.md``: the comparison as Markdown tables, every number from a :class:`ComparisonReport`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from optical.eval.metrics import aggregate_name

if TYPE_CHECKING:
    from optical.report.compare import ComparisonReport

SIGNIFICANT_MARK = "†"


def _num(value: float, signed: bool = False) -> str:
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _p(value: float) -> str:
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def render_markdown(report: ComparisonReport, plot_files: list[Path]) -> str:
    others = [s.name for s in report.systems if s.name != report.baseline]
    lines = [
        "# Comparison of evaluation runs",
        "",
        f"Split `{report.split_name}` (fingerprint `{report.split_fingerprint}`). Baseline: **{report.baseline}**.",
        "",
        "| system | student | teacher | seeds | run dirs |",
        "|---|---|---|---|---|",
    ]
    for s in report.systems:
        students = ", ".join(f"`{student}`" for student in s.students)
        lines.append(f"| {s.name} | {students} | {s.teacher} | {s.n_seeds} | {', '.join(f'`{d}`' for d in s.run_dirs)} |")
    lines += [
        "",
        "## How to read the tables",
        "",
        "- A system cell is its mean over queries with a 95% percentile bootstrap CI over queries "
        f"({report.n_resamples} resamples, seed {report.seed}; Efron & Tibshirani 1993). With several seeds, "
        "per-query values are first averaged over seeds, so the query stays the unit of every test.",
        "- Δ = system − baseline, with the 95% paired bootstrap CI of the mean difference, and `p` the Holm-adjusted "
        "two-sided p-value of a paired randomisation (sign-flip) test (Smucker, Allan & Carterette, CIKM 2007; exact "
        "enumeration with at most 16 non-zero differences).",
        f"- {SIGNIFICANT_MARK} marks a difference significant at α = {report.alpha} after Holm–Bonferroni correction "
        "(Holm 1979) across the languages of the table (group rows: across the groups). Unmarked differences are not "
        "significant.",
        "- Group rows pool the per-query values of the group's languages: "
        + "; ".join(f"{g} = {', '.join(langs)}" for g, langs in report.resource_groups.items())
        + ".",
        "",
    ]
    if report.notes:
        lines += ["Notes:", "", *(f"- {note}" for note in report.notes), ""]
    for task, measures in report.measures.items():
        if not measures:
            continue
        lines += [f"## {task}", ""]
        main = report.main_measures.get(task)
        for measure in sorted(measures, key=lambda m: m != main):  # the main measure first
            lines += _measure_table(report, task, measure, others)
        lines += _gap_table(report, task)
    if plot_files:
        lines += ["## Plots", "", *(f"![{p.stem}]({p.as_posix()})" for p in plot_files), ""]
    return "\n".join(lines) + "\n"


def _measure_table(report: ComparisonReport, task: str, measure: str, others: list[str]) -> list[str]:
    main = " (main measure)" if report.main_measures.get(task) == measure else ""
    header = ["scope", "n", f"{report.baseline} (baseline)"]
    for name in others:
        header += [name, f"Δ {name}", f"p {name}"]
    lines = [f"### {task}: {aggregate_name(measure)}{main}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    scopes = [(lang, "lang") for lang in report.tasks[task]] + [
        (g, "group") for g in report.resource_groups if report.summary(report.baseline, task, g, measure)
    ]
    for scope, kind in scopes:
        base = report.summary(report.baseline, task, scope, measure)
        if base is None:
            continue
        label = f"**{scope}** ({', '.join(_group_members(report, task, scope))})" if kind == "group" else scope
        row = [label, str(base.n_queries), _cell(base)]
        for name in others:
            cell = report.summary(name, task, scope, measure)
            comparison = report.comparison(name, task, scope, measure)
            row.append(_cell(cell) if cell else "–")
            if comparison is None:
                row += ["–", "–"]
                continue
            mark = f" {SIGNIFICANT_MARK}" if comparison.significant else ""
            row.append(
                f"{_num(comparison.diff, signed=True)} [{_num(comparison.ci_low, True)}, {_num(comparison.ci_high, True)}]{mark}"
            )
            row.append(_p(comparison.p_holm))
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def _group_members(report: ComparisonReport, task: str, group: str) -> list[str]:
    return [lang for lang in report.resource_groups[group] if lang in report.tasks[task]]


def _cell(cell) -> str:
    return f"{_num(cell.mean)} [{_num(cell.ci_low)}, {_num(cell.ci_high)}]"


def _gap_table(report: ComparisonReport, task: str) -> list[str]:
    gaps = [g for g in report.gaps if g.task == task]
    if not gaps:
        return []
    measure = aggregate_name(gaps[0].measure)
    lines = [
        f"### {task}: resource gap ({measure}, high − low)",
        "",
        "95% CI: each group resampled on its own (unpaired bootstrap). No significance test is made on the gap.",
        "",
        "| system | low | high | gap [95% CI] |",
        "|---|---|---|---|",
    ]
    for g in gaps:
        lines.append(f"| {g.system} | {_num(g.low_mean)} | {_num(g.high_mean)} | {_num(g.gap, True)} [{_num(g.ci_low, True)}, {_num(g.ci_high, True)}] |")
    return lines + [""]
