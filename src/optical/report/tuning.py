"""The report of a tuning study: every trial's dev score, and the trial chosen for each method.

A tuning study is a study whose cells name trials (``trial: NAME`` with ``distill:`` values over
``base.distill``) and whose ``query_noises`` is empty, so that no run is evaluated on the test split. Each
run's ``run.json`` holds what model selection measured on the dev split: the dev metric of the initial
student and of the kept step. A trial's score is the mean over its seeds of the kept step's dev metric;
the chosen trial of a method (per language and condition) is the one with the highest score, the first
listed on a tie. ``tuning.json`` holds each chosen trial's full distillation settings, to be frozen into the
study config. The protocol gives every method the same number of trials (issue 12); this module reports
what was run and says when the counts differ.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from optical.formatting import cell_text, number
from optical.report.document import Bullets, Code, Document, Heading, Paragraph, Table
from optical.storage import atomic_write_json, atomic_write_text
from optical.study.config import GRID_DISTILL_FIELDS, merge_distill, run_distill_values
from optical.study.layout import REPORT_DIR
from optical.train.config import DistillConfig
from optical.train.record import COLLAPSE_SPREAD_RATIO, RunRecord

TUNING_JSON = "tuning.json"
#: A trial seed whose run did not record the query-embedding spread.
NOT_MEASURED = "n/a"
#: Config fields that identify a run rather than a setting being tuned.
_NOT_SETTINGS = frozenset({"out_dir", "seed", "lang", "method", "data_dir", "teacher", "student", "sources", "device"})


def is_tuning(manifest: dict) -> bool:
    """Whether a study manifest holds tuning trials."""
    return any("trial" in entry for entry in manifest["runs"])


@dataclass(frozen=True)
class TrialResult:
    """One trial of one method on one language and condition, over its seeds."""

    lang: str
    method: str
    trial: str
    condition: str
    seeds: tuple[int, ...]
    dev_before: tuple[float | None, ...]
    dev_kept: tuple[float | None, ...]
    kept_steps: tuple[int | None, ...]
    #: Per seed: the first dev step at which the student collapsed, None if it did not, "n/a" if not measured.
    collapsed_at: tuple[int | str | None, ...]
    steps: int
    config: dict[str, Any]

    @property
    def score(self) -> float | None:
        """Mean dev metric at the kept step over the seeds that selected (None without dev selection)."""
        known = [v for v in self.dev_kept if v is not None]
        return statistics.mean(known) if known else None

    @property
    def collapse_text(self) -> str:
        """``k of n`` seeds collapsed (with the first step), or ``n/a`` when no seed measured the spread."""
        measured = [c for c in self.collapsed_at if c != NOT_MEASURED]
        if not measured:
            return NOT_MEASURED
        steps = sorted(c for c in measured if c is not None)
        return f"{len(steps)} of {len(measured)}" + (f" (from step {steps[0]})" if steps else "")

    @property
    def learned_nothing(self) -> int:
        """Seeds whose selection kept step 0: the initial student scored best on dev."""
        return sum(1 for step in self.kept_steps if step == 0)


@dataclass(frozen=True)
class AcrossLanguages:
    """The trial chosen for a method over several tuning languages (:attr:`TuningReport.chosen_across_languages`)."""

    trial: str
    languages: tuple[str, ...]
    mean_rank: float
    mean_score: float
    #: Trials finished on every tuning language (those that competed).
    compared: int
    #: The trial's result on one language, for its settings (equal on every language but for the language).
    example: TrialResult


def _rank(trials: dict[str, TrialResult], name: str) -> int:
    """1 + the number of trials of one language scoring strictly better than ``name``."""
    return 1 + sum(1 for other in trials.values() if other.score > trials[name].score)


@dataclass
class TuningReport:
    """Every trial's result and the chosen trial per (language, method, condition)."""

    study: str
    trials: list[TrialResult]
    varying: list[str]
    missing: list[str] = field(default_factory=list)
    #: The study config's ``base`` section (``distill`` and ``per_method``): what every trial starts from.
    base: dict[str, Any] = field(default_factory=dict)
    #: The study config's ``variants`` (name -> its loss ``method`` and values): what a variant's trials start from.
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def chosen(self) -> dict[tuple[str, str, str], TrialResult]:
        best: dict[tuple[str, str, str], TrialResult] = {}
        for trial in self.trials:
            key = (trial.lang, trial.method, trial.condition)
            held = best.get(key)
            if trial.score is not None and (held is None or held.score is None or trial.score > held.score):
                best[key] = trial
        return best

    @property
    def chosen_across_languages(self) -> dict[tuple[str, str], AcrossLanguages]:
        """Per (method, condition) tuned on several languages: the trial with the best mean rank over them.

        Each language ranks the method's trials by score (1 = best, tied scores share the better rank); only
        trials finished on every language of the method compete. Ranks weigh each language equally whatever its
        scale: held-out alignment moves by 1e-3 on a language the encoder knows and by 0.5 on one it barely saw,
        so a mean of raw scores would be the barely-seen language's choice. Ties go to the higher mean score."""
        by_key: dict[tuple[str, str], dict[str, dict[str, TrialResult]]] = defaultdict(lambda: defaultdict(dict))
        for trial in self.trials:
            if trial.score is not None:
                by_key[(trial.method, trial.condition)][trial.lang][trial.trial] = trial
        chosen = {}
        for key, per_lang in by_key.items():
            if len(per_lang) < 2:
                continue
            common = [name for name in next(iter(per_lang.values())) if all(name in trials for trials in per_lang.values())]
            if not common:
                continue
            ranks = {name: [_rank({n: trials[n] for n in common}, name) for trials in per_lang.values()] for name in common}
            means = {name: statistics.mean(trials[name].score for trials in per_lang.values()) for name in common}
            best = min(common, key=lambda name: (statistics.mean(ranks[name]), -means[name]))
            chosen[key] = AcrossLanguages(
                trial=best,
                languages=tuple(sorted(per_lang)),
                mean_rank=statistics.mean(ranks[best]),
                mean_score=means[best],
                compared=len(common),
                example=next(iter(per_lang.values()))[best],
            )
        return chosen

    def to_document(self) -> Document:
        doc = Document(f"Tuning study {self.study}: dev-split scores of every trial")
        doc.add(*self._introduction(), *self._trials_blocks(), *self._chosen_blocks(), *self._across_blocks())
        if self.missing:
            doc.add(Heading(2, "Runs not finished"), Bullets([f"`{m}`" for m in self.missing]))
        return doc

    def _introduction(self) -> list:
        counts = defaultdict(set)
        for trial in self.trials:
            counts[(trial.lang, trial.condition, trial.method)].add(trial.trial)
        blocks = [
            Paragraph(
                "Each trial trains with its own settings (the columns below are the settings that differ between "
                "trials); its score is the mean over seeds of the dev metric at the step model selection kept. "
                "Only the dev split is read. The chosen trial of each method has the highest score (†)."
            )
        ]
        per_method = sorted({(lang, cond, method, len(names)) for (lang, cond, method), names in counts.items()})
        if len({n for *_, n in per_method}) > 1:
            blocks.append(
                Paragraph(
                    "The methods did not get the same number of trials: "
                    + "; ".join(f"{method} {n} ({lang}, {cond})" for lang, cond, method, n in per_method)
                    + "."
                )
            )
        return blocks

    def _trials_blocks(self) -> list:
        chosen = {id(t) for t in self.chosen.values()}
        rows = []
        for t in self.trials:
            settings = [cell_text(_setting(t.config, key)) for key in self.varying]
            rows.append(
                [
                    t.lang,
                    t.condition,
                    t.method,
                    t.trial + (" †" if id(t) in chosen else ""),
                    *settings,
                    str(len(t.seeds)),
                    _mean_text(t.dev_before),
                    "-" if t.score is None else number(t.score),
                    f"{t.learned_nothing} of {len(t.seeds)}",
                    t.collapse_text,
                ]
            )
        return [
            Heading(2, "Trials"),
            Paragraph(
                "kept 0: seeds whose selection kept the initial student (the run learned nothing the dev split rewards). "
                "collapsed: seeds whose pooled query embeddings of different dev questions became nearly identical "
                f"(spread, 1 − mean pairwise cosine, below {COLLAPSE_SPREAD_RATIO:g} x the initial student's) at some dev "
                "evaluation; n/a: the run did not record the spread."
            ),
            Table(
                ["lang", "condition", "method", "trial", *self.varying, "seeds", "dev before", "dev kept", "kept 0", "collapsed"],
                rows,
            ),
        ]

    def _chosen_blocks(self) -> list:
        blocks = [
            Heading(2, "Chosen"),
            Bullets(
                [
                    f"{lang} ({condition}) {method}: trial {t.trial}, dev {number(t.score)}"
                    for (lang, method, condition), t in sorted(self.chosen.items())
                ]
            ),
        ]
        frozen = self.frozen_settings()
        if frozen:
            blocks.append(
                Paragraph(
                    "The chosen settings, to freeze into a study config's base (what each chosen trial set over the "
                    "tuning study's base; one block per language and condition tuned):"
                )
            )
            for (lang, condition), per_method in frozen.items():
                blocks.append(
                    Code(f"# {lang}, {condition}\n" + yaml.safe_dump({"per_method": per_method}, sort_keys=False), "yaml")
                )
        return blocks

    def _across_blocks(self) -> list:
        across = self.chosen_across_languages
        if not across:
            return []
        rows = [
            [
                method,
                condition,
                choice.trial,
                ", ".join(choice.languages),
                str(choice.compared),
                f"{choice.mean_rank:.2f}",
                number(choice.mean_score),
            ]
            for (method, condition), choice in sorted(across.items())
        ]
        per_condition: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for (method, condition), choice in sorted(across.items()):
            per_condition[condition][method] = self._trial_values(choice.example)
        return [
            Heading(2, "Chosen across languages"),
            Paragraph(
                "One setting per method for every language: each tuning language ranks the method's trials by dev "
                "score (1 = best), and the trial with the lowest mean rank is chosen (ties: the higher mean score). "
                "Only trials finished on every tuning language compete. To freeze into a study config's base:"
            ),
            Table(["method", "condition", "trial", "languages", "trials compared", "mean rank", "mean dev"], rows),
            *(
                Code(f"# {condition}, across languages\n" + yaml.safe_dump({"per_method": values}, sort_keys=False), "yaml")
                for condition, values in per_condition.items()
            ),
        ]

    def frozen_settings(self) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
        """Per (language, condition): method -> the chosen trial's values that differ from what the study's base
        gives that method (what the trial set), nested as a study config's ``base.per_method`` takes them."""
        frozen: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
        for (lang, method, condition), t in sorted(self.chosen.items()):
            frozen[(lang, condition)][method] = self._trial_values(t)
        return dict(frozen)

    def _trial_values(self, t: TrialResult) -> dict[str, Any]:
        """What trial ``t`` set over the study's base for its method (nested as ``base.per_method`` takes it)."""
        variant = dict(self.variants.get(t.method) or {})
        loss_method = variant.pop("method", t.method)
        method_base = merge_distill(self.base.get("distill") or {}, variant)
        method_base = merge_distill(method_base, (self.base.get("per_method") or {}).get(t.method, {}))
        start = DistillConfig(lang=t.lang, method=loss_method, out_dir="", **run_distill_values(loss_method, method_base, {}))
        before = _flatten(start.to_dict())
        values: dict[str, Any] = {}
        for key, value in _flatten(t.config).items():
            if key.split(".", 1)[0] in GRID_DISTILL_FIELDS or (key in before and before[key] == value):
                continue
            *parents, leaf = key.split(".")
            target = values
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = value
        return values

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "chosen": [
                {"lang": lang, "method": method, "condition": condition, "trial": t.trial, "dev": t.score, "distill": t.config}
                for (lang, method, condition), t in sorted(self.chosen.items())
            ],
            "chosen_across_languages": [
                {
                    "method": method,
                    "condition": condition,
                    "trial": choice.trial,
                    "languages": list(choice.languages),
                    "trials_compared": choice.compared,
                    "mean_rank": choice.mean_rank,
                    "mean_dev": choice.mean_score,
                    "per_method": self._trial_values(choice.example),
                }
                for (method, condition), choice in sorted(self.chosen_across_languages.items())
            ],
            "trials": [
                {
                    "lang": t.lang,
                    "method": t.method,
                    "trial": t.trial,
                    "condition": t.condition,
                    "seeds": list(t.seeds),
                    "dev_before": list(t.dev_before),
                    "dev_kept": list(t.dev_kept),
                    "kept_steps": list(t.kept_steps),
                    "collapsed_at": list(t.collapsed_at),
                    "score": t.score,
                }
                for t in self.trials
            ],
        }

    def save(self, study_dir: Path) -> list[Path]:
        report_dir = Path(study_dir) / REPORT_DIR
        doc = self.to_document()
        atomic_write_text(report_dir / "report.md", doc.markdown())
        atomic_write_text(report_dir / "report.html", doc.html(report_dir))
        atomic_write_json(report_dir / TUNING_JSON, self.to_json())
        return [report_dir / "report.md", report_dir / "report.html", report_dir / TUNING_JSON]


def tuning_report(study_dir: str | Path, manifest: dict) -> TuningReport:
    """Read every trial run's ``run.json`` of a tuning study (computes; writes nothing)."""
    study_dir = Path(study_dir)
    grouped: dict[tuple[str, str, str, str], list[tuple[dict, RunRecord]]] = defaultdict(list)
    missing = []
    for entry in manifest["runs"]:
        if "trial" not in entry:
            continue
        record = RunRecord.find(study_dir / entry["distill_dir"]) if entry.get("distill_dir") else None
        if record is None or not record.completed:
            missing.append(entry["id"])
            continue
        condition = ", ".join(f"{axis} {cell_text(entry.get(axis))}" for axis in ("budget", "noise", "backbone", "domain"))
        grouped[(entry["lang"], condition, entry["method"], entry["trial"])].append((entry, record))
    trials = []
    for (lang, condition, method, trial), runs in grouped.items():
        runs.sort(key=lambda pair: pair[0]["seed"])
        results = [record.result for _, record in runs]
        trials.append(
            TrialResult(
                lang=lang,
                method=method,
                trial=trial,
                condition=condition,
                seeds=tuple(entry["seed"] for entry, _ in runs),
                dev_before=tuple(r.dev_before for r in results),
                dev_kept=tuple(r.best_metric for r in results),
                kept_steps=tuple(r.best_step for r in results),
                collapsed_at=tuple(r.collapsed_at if r.spread_measured else NOT_MEASURED for r in results),
                steps=results[0].steps,
                config={k: v for k, v in runs[0][1].config.to_dict().items() if k not in _NOT_SETTINGS},
            )
        )
    config = manifest.get("config") or {}
    return TuningReport(
        str(manifest.get("study", study_dir.name)),
        trials,
        _varying_settings(trials),
        missing,
        config.get("base") or {},
        config.get("variants") or {},
    )


def _setting(config: dict[str, Any], key: str) -> Any:
    """A setting by dotted key (``loss_options.ot.eps``); None where the trial does not set it."""
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys (``loss_options.ot.eps``); an empty mapping sets nothing."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _varying_settings(trials: list[TrialResult]) -> list[str]:
    """The settings that differ between the trials of a method: the columns of the trial table."""
    flat = [_flatten(trial.config) for trial in trials]
    keys = list(dict.fromkeys(key for settings in flat for key in settings))
    values: dict[tuple[str, str], set[str]] = defaultdict(set)
    for trial, settings in zip(trials, flat):
        for key in keys:
            values[(trial.method, key)].add(json.dumps(settings.get(key), sort_keys=True))
    methods = {trial.method for trial in trials}
    return [key for key in keys if any(len(values[(method, key)]) > 1 for method in methods)]


def _mean_text(values: tuple[float | None, ...]) -> str:
    known = [v for v in values if v is not None]
    return number(statistics.mean(known)) if known else "-"
