"""The study's grid: conditions (axis values), the records grouped by cell, and the arms of the comparisons.

A *condition* is a tuple of the values of :data:`AXES`; a *cell* is a
language, a method and a condition. :class:`GridIndex` gives each cell's
per-query values as a :class:`~optical.eval.stats.Sample` over the seeds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from optical.eval.results import ZERO_SHOT
from optical.eval.stats import PerQuery, Sample, average_over_seeds
from optical.report.study.load import Record

#: Conditions (axis values) of a record: everything but language, method and seed.
AXES = ("backbone", "domain", "budget", "noise", "query_noise")
#: The axes that decide how a student was trained (all but the typo rate, applied at evaluation); a condition's
#: first TRAINED entries.
TRAINED = AXES.index("query_noise")
AXIS_NAMES = {"backbone": "backbone", "domain": "domain", "budget": "budget", "noise": "bitext noise", "query_noise": "typo rate"}

Condition = tuple


@dataclass(frozen=True)
class Arm:
    """Conditions of the study that differ from the reference in the same axes (none: the reference arm itself)."""

    axes: tuple[str, ...]
    conditions: tuple[Condition, ...]

    @property
    def name(self) -> str:
        return "reference" if not self.axes else " + ".join(AXIS_NAMES[axis] for axis in self.axes)

    def family(self, kind: str) -> str:
        return f"{kind}, arm {self.name}"


class GridIndex:
    """Records grouped by (lang, method, condition) -> the per-seed runs."""

    def __init__(self, records: tuple[Record, ...], reference: dict[str, Any]) -> None:
        self.reference = reference
        self.groups: dict[tuple, list[Record]] = defaultdict(list)
        self.zero_shot: dict[tuple[str, float], list[Record]] = defaultdict(list)
        for r in records:
            if r.method == ZERO_SHOT:
                self.zero_shot[(r.lang, r.query_noise)].append(r)
            else:
                self.groups[(r.lang, r.method, self.condition(r))].append(r)

    @staticmethod
    def condition(r: Record) -> Condition:
        return (r.backbone, r.domain, r.budget, r.noise, r.query_noise)

    def by_seed(self, lang: str, method: str, condition: Condition, task_key: str, measure: str) -> dict[int | None, PerQuery]:
        """The method's per-query values on the cell, keyed by training seed (None for the zero-shot model)."""
        runs = (
            self.zero_shot.get((lang, condition[4]), [])
            if method == ZERO_SHOT
            else self.groups.get((lang, method, condition), [])
        )
        found = {}
        for r in runs:
            task = r.run.tasks.get(task_key)
            if task is not None and measure in task.per_query:
                found[r.seed] = task.per_query[measure]
        return found

    def sample(self, lang: str, method: str, condition: Condition, task_key: str, measure: str) -> Sample | None:
        """The method's values on the cell over its seeds, or None when none has them."""
        found = self.by_seed(lang, method, condition, task_key, measure)
        return Sample(method, tuple(found.values())) if found else None

    def change(self, lang: str, method: str, before: Condition, after: Condition, task_key: str, measure: str) -> Sample | None:
        """Per-query change ``after - before`` of the method, one per seed that ran in both conditions.

        Pairing by seed keeps each seed's own change, so the spread between
        seeds reaches the two-level bootstrap of the comparison (a change of
        seed-averaged values would hide it). Without a common seed, the
        change of the seed averages stands as one sample. None when a
        condition has no values.
        """
        return seed_paired_difference(
            self.by_seed(lang, method, before, task_key, measure), self.by_seed(lang, method, after, task_key, measure), method
        )

    def difference(
        self, lang: str, method: str, baseline: str, condition: Condition, task_key: str, measure: str
    ) -> Sample | None:
        """Per-query ``method - baseline`` on one cell, one per seed both ran with (as :meth:`change` pairs seeds)."""
        return seed_paired_difference(
            self.by_seed(lang, baseline, condition, task_key, measure),
            self.by_seed(lang, method, condition, task_key, measure),
            f"{method} − {baseline}",
        )

    def ref_condition(self, **changes: Any) -> Condition:
        values = {**self.reference, **changes}
        return tuple(values[axis] for axis in AXES)

    def conditions(self) -> list[Condition]:
        return sorted({c for (_, _, c) in self.groups}, key=lambda c: json.dumps(c, default=str))

    def axis_values(self, axis: str) -> list:
        """The values of ``axis`` among the conditions whose other axes are at the reference (a curve's x values)."""
        position, reference = AXES.index(axis), self.ref_condition()
        values = {
            c[position] for (_, _, c) in self.groups if all(x == r for i, (x, r) in enumerate(zip(c, reference)) if i != position)
        }
        return sorted(values, key=axis_order)

    def arms(self) -> list[Arm]:
        """The reference arm, then one arm per axis that varies alone, then any arm of several axes varying together."""
        reference = self.ref_condition()
        by_axes: dict[tuple[str, ...], list[Condition]] = defaultdict(list)
        for condition in self.conditions():
            by_axes[tuple(a for a, x, r in zip(AXES, condition, reference) if x != r)].append(condition)
        order = sorted(by_axes, key=lambda axes: (len(axes) > 1, [AXES.index(a) for a in axes]))
        return [Arm(axes, tuple(by_axes[axes])) for axes in order]


def axis_order(value: Any) -> tuple:
    """Numbers in order, then names (a budget is a count or ``all``)."""
    return (isinstance(value, str), value if not isinstance(value, str) else 0, str(value))


def seed_paired_difference(first: dict[int | None, PerQuery], second: dict[int | None, PerQuery], label: str) -> Sample | None:
    """``second - first`` per query, one sample per seed both hold (else of the seed averages); None if one is empty."""
    if not first or not second:
        return None
    common = sorted(set(first) & set(second), key=lambda seed: -1 if seed is None else seed)
    if common:
        pairs = [(first[seed], second[seed]) for seed in common]
    else:
        pairs = [(average_over_seeds(list(first.values()), label), average_over_seeds(list(second.values()), label))]
    return Sample(label, tuple({q: b[q] - a[q] for q in b} for a, b in pairs))
