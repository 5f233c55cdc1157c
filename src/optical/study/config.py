"""The study configuration: a YAML grid of distillation runs and their evaluations.

A study asks whether optimal-transport distillation (OPTICAL, Huang et al.,
WSDM 2023, arXiv:2301.12566) makes cross-lingual alignment more robust than
standard knowledge distillation on low-resource XQuAD languages. The YAML file
declares the axes of the grid::

    study: smoke                     # a name for the report
    teacher: multilingual-e5-small   # a model name/dir, or {tiny: {...}}
    languages: [el, de]              # XQuAD-R query languages (not en)
    methods: [zero-shot, mse, ot]    # zero-shot, or any optical.losses method (ot+mse:0.5, ...)
    seeds: [0, 1, 2]
    budgets: [2000, all]             # bitext pairs per run; "all" takes every usable pair
    noises: [0.0, 0.5]               # share of misaligned bitext pairs
    backbones:                       # student initialisations, name -> spec
      e5-small: multilingual-e5-small
      minilm: {model: all-MiniLM-L6-v2, projection: false}
      tiny: {tiny: {hidden: 32, layers: 2, seed: 1}}
    domains:                         # bitext domains, name -> sources (only those covering a language are used)
      mixed: [xnli_devtest, ntrex128]
    query_noises: [0.0, 0.1]         # test-time typo rates (evaluation-only axis); [] evaluates nothing
    resource_groups: {low: [el, hi, th, tr], high: [de, es, ru, zh]}
    n_resamples: 10000               # bootstrap / randomisation resamples in the report
    base:
      distill: {batch_size: 32, max_length: 64, select_on: xquad_dev, loss_options: {ot: {eps: 0.05}}}
      per_method:                    # optional: one method's DistillConfig values over base.distill
        mse: {lr: 1.0e-4, epochs: 2} #   (where a tuning study's chosen settings are frozen)
      eval: {tasks: [clir_sentence, pool, retention, align]}
    variants:                        # optional: named methods with their own settings (ablations), usable in methods
      ot-unbalanced: {method: ot, loss_options: {ot: {tau: 1.0}}}
      ot-idf: {method: ot, loss_options: {ot: {marginals: idf}}}
    cells:                           # optional: partial grids; each overrides the axes it names
      - {languages: [el, de]}
      - {languages: [el], noises: [0.5]}
      - {methods: [ot], trial: lr-1e-4, distill: {lr: 1.0e-4}}   # a tuning trial: DistillConfig values over base

The first value of each axis is the study's *reference condition*: curves
vary one axis while the others stay at their reference values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optical.data.languages import BITEXT_LANGS, validate_lang
from optical.data.sources import get_source
from optical.errors import OpticalError
from optical.eval.evaluate import EvalConfig
from optical.eval.results import ZERO_SHOT
from optical.eval.tasks import RESOURCE_GROUPS, TASKS, supported_tasks
from optical.losses.combined import MethodSpec
from optical.models.check import check_tiny_shape
from optical.storage import load_yaml_file
from optical.train.config import DistillConfig

ALL_PAIRS = "all"
#: Every language with registered bitext (the XQuAD ones and the truly low-resource ones); which evaluation
#: tasks a language supports is checked by the evaluation config (XQuAD tasks need an XQuAD language).
STUDY_LANGS: tuple[str, ...] = BITEXT_LANGS
DEFAULT_DOMAINS: dict[str, list[str]] = {"mixed": ["xnli_devtest", "ntrex128", "flores200_sib_dev_extra"]}

#: Axes a grid (the top level or a cell) may set.
AXES = ("languages", "methods", "seeds", "budgets", "noises", "backbones", "domains", "query_noises")
#: Keys a cell may set: axes, whether its runs keep their weights, and a tuning trial (name + distill values).
CELL_KEYS = (*AXES, "keep_weights", "trial", "distill")
TOP_LEVEL_KEYS = (
    *AXES,
    "study",
    "teacher",
    "resource_groups",
    "n_resamples",
    "base",
    "cells",
    "data_dir",
    "store",
    "keep_weights",
    "export",
    "variants",
)
#: DistillConfig fields the grid or the study sets; ``base.distill`` may not.
GRID_DISTILL_FIELDS = (
    "lang",
    "method",
    "out_dir",
    "sources",
    "budget",
    "noise",
    "seed",
    "teacher",
    "student",
    "projection",
    "data_dir",
)
#: EvalConfig fields the grid or the study sets; ``base.eval`` may not.
GRID_EVAL_FIELDS = ("student", "out_dir", "langs", "teacher", "query_noise", "data_dir", "system")
TINY_KEYS = ("hidden", "layers", "heads", "seed", "vocab_size")


@dataclass(frozen=True)
class ModelSpec:
    """A model: a default name or local dir, or a tiny random model built by :mod:`optical.models.tiny`.

    ``label`` is what run ids hash: the name for a named model, ``tiny-<hash>``
    for a tiny one (its directory's location does not change what it is).
    """

    name: str | None = None
    tiny: tuple[tuple[str, int], ...] | None = None
    projection: bool = False

    @property
    def label(self) -> str:
        if self.tiny is None:
            return str(self.name)
        digest = hashlib.sha256(json.dumps(sorted(self.tiny)).encode()).hexdigest()[:12]
        return f"tiny-{digest}"

    @property
    def tiny_options(self) -> dict[str, int]:
        return dict(self.tiny or ())


@dataclass
class GridAxes:
    """The values of every axis of one (partial) grid."""

    languages: list[str]
    methods: list[str]
    seeds: list[int]
    budgets: list[int | None]
    noises: list[float]
    backbones: list[str]
    domains: list[str]
    query_noises: list[float]
    #: A tuning trial's name (a cell with ``trial:``) and its DistillConfig values over ``base.distill``.
    trial: str | None = None
    distill: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """A named method of a study: a loss method (``ot``) with its own DistillConfig values (``ot.tau: 1.0``)."""

    method: str
    distill: dict[str, Any]


@dataclass
class StudyConfig:
    """A parsed, validated study file."""

    name: str
    teacher: ModelSpec
    axes: GridAxes
    backbones: dict[str, ModelSpec]
    domains: dict[str, list[str]]
    cells: list[GridAxes]
    resource_groups: dict[str, list[str]]
    n_resamples: int
    base_distill: dict[str, Any]
    base_eval: dict[str, Any]
    #: ``base.per_method``: method -> DistillConfig values over ``base_distill`` (frozen tuned settings).
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``variants``: a name usable in ``methods`` -> its loss method and its DistillConfig values (an ablation).
    variants: dict[str, Variant] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    source: str = "config"
    data_dir: str | None = None
    store: str | None = None
    #: A committed ``optical study export`` of this study (e.g. ``results/study-v2``): runs it holds count as done.
    export: str | None = None
    #: Keep every run's student weights after its evaluations (default: delete them, keep run.json's digests).
    keep_weights: bool = False
    #: Indexes into ``cells`` of the cells whose runs keep their weights (``keep_weights: true`` in the cell).
    kept_cells: tuple[int, ...] = ()

    def keeps_weights(self, run: Any) -> bool:
        """Whether a run's student weights stay after its evaluations: the study keeps them all, or a
        cell that keeps them holds the run (its language, method, seed, budget, noise, backbone, domain)."""
        if self.keep_weights:
            return True
        for index in self.kept_cells:
            cell = self.cells[index]
            values = (run.lang, run.method, run.seed, run.budget, run.noise, run.backbone, run.domain)
            axes = (cell.languages, cell.methods, cell.seeds, cell.budgets, cell.noises, cell.backbones, cell.domains)
            if all(value in axis for value, axis in zip(values, axes)):
                return True
        return False

    def loss_method(self, method: str) -> str:
        """The loss method a name of the ``methods`` axis trains with (a variant's ``method``, else the name itself)."""
        variant = self.variants.get(method)
        return variant.method if variant is not None else method

    def method_distill(self, method: str) -> dict[str, Any]:
        """``base.distill``, then a variant's values, then the name's ``base.per_method`` values (before any trial's)."""
        variant = self.variants.get(method)
        values = merge_distill(self.base_distill, variant.distill) if variant is not None else self.base_distill
        return merge_distill(values, self.per_method.get(method, {}))

    @property
    def grids(self) -> list[GridAxes]:
        """The partial grids whose union is the study (the whole product when no cells are given)."""
        return self.cells or [self.axes]

    @property
    def reference(self) -> dict[str, Any]:
        """The reference condition: the first value of each top-level axis."""
        return {
            "budget": self.axes.budgets[0],
            "noise": self.axes.noises[0],
            "backbone": self.axes.backbones[0],
            "domain": self.axes.domains[0],
            "query_noise": self.axes.query_noises[0] if self.axes.query_noises else None,  # None: nothing evaluated
        }


def load_study_config(path: str | Path) -> StudyConfig:
    """Read and validate a study YAML file; one-line OpticalError naming the file and key on any problem."""
    path = Path(path)
    return parse_study_config(load_yaml_file(path, "study config"), source=str(path))


def parse_study_config(raw: Any, source: str = "config") -> StudyConfig:
    if not isinstance(raw, dict):
        raise OpticalError(f"{source}: a study config must be a mapping of keys to values")
    _check_keys(raw, TOP_LEVEL_KEYS, source)
    for required in ("languages", "methods"):
        if required not in raw:
            raise OpticalError(f"{source}: key {required!r} is required")
    backbones = _parse_backbones(raw.get("backbones", {"teacher-copy": None}), raw.get("teacher"), source)
    domains = _parse_domains(raw.get("domains", DEFAULT_DOMAINS), source)
    variants = _parse_variants(raw.get("variants") or {}, f"{source}: variants")
    axes = _parse_axes(raw, source, backbones, domains, defaults=None, variants=variants)
    cells_raw = raw.get("cells") or []
    if not isinstance(cells_raw, list):
        raise OpticalError(f"{source}: cells must be a list of partial grids (mappings of axis -> values)")
    cells, kept_cells = [], []
    for i, cell in enumerate(cells_raw):
        if not isinstance(cell, dict):
            raise OpticalError(f"{source}: cells[{i}] must be a mapping of axis -> values")
        where = f"{source}: cells[{i}]"
        _check_keys(cell, CELL_KEYS, where)
        if _flag(cell, "keep_weights", where):
            kept_cells.append(i)
        axes_only = {k: v for k, v in cell.items() if k in AXES}
        parsed = _parse_axes(axes_only, where, backbones, domains, defaults=axes, variants=variants)
        trial, overrides = _parse_trial(cell, where)
        cells.append(dataclasses.replace(parsed, trial=trial, distill=overrides))
    for where, grid in [(source, axes), *((f"{source}: cells[{i}]", cell) for i, cell in enumerate(cells))]:
        if not grid.query_noises and ZERO_SHOT in grid.methods:  # it would be "pending" forever
            raise OpticalError(
                f"{where}: query_noises is empty, so the {ZERO_SHOT} runs, which train nothing, would do nothing; "
                f"give query_noises a value (e.g. [0.0]) or drop {ZERO_SHOT}"
            )
    base = raw.get("base") or {}
    if not isinstance(base, dict):
        raise OpticalError(f"{source}: base must be a mapping with 'distill' and/or 'eval'")
    _check_keys(base, ("distill", "per_method", "eval"), f"{source}: base")
    base_distill = _parse_base(base.get("distill") or {}, DistillConfig, GRID_DISTILL_FIELDS, f"{source}: base.distill")
    per_method = _parse_per_method(base.get("per_method") or {}, axes, cells, variants, f"{source}: base.per_method")
    base_eval = _parse_base(base.get("eval") or {}, EvalConfig, GRID_EVAL_FIELDS, f"{source}: base.eval")
    groups = raw.get("resource_groups", {name: list(members) for name, members in RESOURCE_GROUPS.items()})
    if not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
        raise OpticalError(f"{source}: resource_groups must map a group name to a list of languages")
    seen: dict[str, str] = {}
    for group, members in groups.items():
        for lang in members:
            code = _language(lang, f"{source}: resource_groups")
            if code in seen:
                raise OpticalError(
                    f"{source}: resource_groups puts {code} in both {seen[code]} and {group}; a language belongs to one group"
                )
            seen[code] = str(group)
    for key in ("data_dir", "store", "study", "export"):
        if key in raw and not isinstance(raw[key], str):
            raise OpticalError(f"{source}: {key} must be a string, got {raw[key]!r}")
    name = str(raw.get("study", Path(source).stem))
    if not name.strip():
        raise OpticalError(f"{source}: study must be a non-empty name (it tells this study's manifest and report from others)")
    n_resamples = raw.get("n_resamples", 10_000)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise OpticalError(f"{source}: n_resamples must be a positive integer, got {n_resamples!r}")
    teacher = _parse_model(raw.get("teacher", "multilingual-e5-small"), f"{source}: teacher", allow_projection=False)
    config = StudyConfig(
        name=name,
        teacher=teacher,
        axes=axes,
        backbones=backbones,
        domains=domains,
        cells=cells,
        resource_groups={str(k): list(v) for k, v in groups.items()},
        n_resamples=n_resamples,
        base_distill=base_distill,
        base_eval=base_eval,
        per_method=per_method,
        variants=variants,
        raw=raw,
        source=source,
        data_dir=raw.get("data_dir"),
        store=raw.get("store"),
        export=raw.get("export"),
        keep_weights=_flag(raw, "keep_weights", source),
        kept_cells=tuple(kept_cells),
    )
    _check_base_values(config)
    return config


def _parse_per_method(
    values: Any, axes: GridAxes, cells: list[GridAxes], variants: dict[str, Variant], where: str
) -> dict[str, dict[str, Any]]:
    """``base.per_method``: each named method must run in the study; its values are DistillConfig fields."""
    if not isinstance(values, dict):
        raise OpticalError(f"{where} must map a method to DistillConfig values, e.g. {{mse: {{lr: 1.0e-4}}}}")
    running = {m for grid in [axes, *cells] for m in grid.methods}
    parsed = {}
    for method, options in values.items():
        if method not in running:
            raise OpticalError(
                f"{where}: method {method!r} does not run in this study (its methods: {', '.join(sorted(running))})"
            )
        if method == ZERO_SHOT:
            raise OpticalError(f"{where}: {ZERO_SHOT} trains nothing, so it takes no distill values")
        parsed[str(method)] = _parse_base(options or {}, DistillConfig, GRID_DISTILL_FIELDS, f"{where}.{method}")
        spec = MethodSpec.parse(variants[method].method if method in variants else method)
        unused = sorted(loss for loss in parsed[str(method)].get("loss_options") or {} if not spec.uses(loss))
        if unused:
            raise OpticalError(f"{where}.{method}.loss_options names {', '.join(unused)}, which {method} does not use")
    return parsed


def _parse_variants(values: Any, where: str) -> dict[str, Variant]:
    """``variants``: name -> ``{method: LOSS_METHOD, <DistillConfig values>}``; a name may not read as a method."""
    if not isinstance(values, dict):
        raise OpticalError(f"{where} must map a name to {{method: ..., <distill values>}}, e.g. ot-idf: {{method: ot, ...}}")
    variants = {}
    for name, body in values.items():
        name = str(name)
        if name == ZERO_SHOT or _reads_as_method(name):
            raise OpticalError(f"{where}: {name!r} already names a method; give the variant another name (e.g. {name}-v)")
        if not isinstance(body, dict) or "method" not in body:
            raise OpticalError(f"{where}.{name} needs a method: the loss method it trains with, e.g. {{method: ot}}")
        method = _method(body["method"], f"{where}.{name}.method")
        if method == ZERO_SHOT:
            raise OpticalError(f"{where}.{name}: {ZERO_SHOT} trains nothing, so it has no variants")
        distill = _parse_base(
            {k: v for k, v in body.items() if k != "method"}, DistillConfig, GRID_DISTILL_FIELDS, f"{where}.{name}"
        )
        unused = sorted(loss for loss in distill.get("loss_options") or {} if not MethodSpec.parse(method).uses(loss))
        if unused:
            raise OpticalError(f"{where}.{name}.loss_options names {', '.join(unused)}, which {method} does not use")
        if not distill:
            raise OpticalError(f"{where}.{name} sets nothing over {method}; a variant needs at least one setting")
        variants[name] = Variant(method, distill)
    return variants


def _reads_as_method(name: str) -> bool:
    try:
        MethodSpec.parse(name)
    except OpticalError:
        return False
    return True


def _parse_trial(cell: dict, where: str) -> tuple[str | None, dict[str, Any]]:
    """A cell's tuning trial: its name and its DistillConfig values (a trial needs both)."""
    trial = cell.get("trial")
    overrides = _parse_base(cell.get("distill") or {}, DistillConfig, GRID_DISTILL_FIELDS, f"{where}.distill")
    if trial is None and overrides:
        raise OpticalError(f"{where}: a cell that sets distill values is a tuning trial; name it with trial: NAME")
    if trial is not None and (not isinstance(trial, str) or not trial.strip()):
        raise OpticalError(f"{where}: trial must be a non-empty name, got {trial!r}")
    return trial, overrides


def merge_distill(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base.distill`` with a trial's values over it; ``loss_options`` merge per loss (a trial that sets
    ``ot.eps`` keeps the base's other ``ot`` options).

    >>> merge_distill({"lr": 2e-5, "loss_options": {"ot": {"eps": 0.05, "tol": 0.0}}}, {"loss_options": {"ot": {"eps": 0.1}}})
    {'lr': 2e-05, 'loss_options': {'ot': {'eps': 0.1, 'tol': 0.0}}}
    """
    merged = {**base, **{k: v for k, v in overrides.items() if k != "loss_options"}}
    if "loss_options" in overrides:
        options = {loss: dict(values) for loss, values in (base.get("loss_options") or {}).items()}
        for loss, values in (overrides["loss_options"] or {}).items():
            options[loss] = {**options.get(loss, {}), **(values or {})}
        merged["loss_options"] = options
    return merged


def run_distill_values(method: str, base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The DistillConfig values of one run: :func:`merge_distill`, with ``loss_options`` cut to the losses
    ``method`` uses (a study's ``ot`` options do not reach its ``mse`` runs)."""
    values = merge_distill(base, overrides)
    if "loss_options" in values:
        spec = MethodSpec.parse(method)
        values["loss_options"] = {loss: opts for loss, opts in values["loss_options"].items() if spec.uses(loss)}
    return values


def _flag(mapping: dict, key: str, where: str) -> bool:
    value = mapping.get(key, False)
    if not isinstance(value, bool):
        raise OpticalError(f"{where}: {key} must be true or false, got {value!r}")
    return value


def _check_keys(mapping: dict, known: tuple[str, ...], where: str) -> None:
    unknown = sorted(str(k) for k in set(mapping) - set(known))
    if unknown:
        raise OpticalError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(known)}")


def _as_list(value: Any, where: str) -> list:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise OpticalError(f"{where} is empty; give at least one value")
    return values


def _language(code: Any, where: str) -> str:
    try:
        return validate_lang(str(code), STUDY_LANGS, "the study languages (languages with registered bitext)")
    except OpticalError as exc:
        raise OpticalError(f"{where}: {exc}") from None


def _method(name: Any, where: str) -> str:
    name = str(name)
    if name == ZERO_SHOT:
        return name
    try:
        MethodSpec.parse(name)
    except OpticalError as exc:
        raise OpticalError(f"{where}: {exc} (or {ZERO_SHOT})") from None
    return name


def _number(value: Any, where: str, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise OpticalError(f"{where}: {value!r} is not {'an integer' if kind is int else 'a number'}")
    return kind(value)


def _parse_axes(
    raw: dict, where: str, backbones: dict, domains: dict, defaults: GridAxes | None, variants: dict[str, Variant]
) -> GridAxes:
    def axis(name: str, parse, fallback: list) -> list:
        if name not in raw:
            return list(getattr(defaults, name)) if defaults is not None else fallback
        given = list(raw[name]) if isinstance(raw[name], dict) else raw[name]  # top-level definitions: their names
        if name == "query_noises" and given == []:
            return []  # no test-split evaluation: a tuning study reads only each run's dev selection
        values = [parse(v, f"{where}: {name}") for v in _as_list(given, f"{where}: {name}")]
        return list(dict.fromkeys(values))  # a value listed twice is one grid point

    def budget(v: Any, w: str) -> int | None:
        if v == ALL_PAIRS or v is None:
            return None
        value = _number(v, w, int)
        if value < 1:
            raise OpticalError(f"{w}: budget {value} must be >= 1 (or '{ALL_PAIRS}')")
        return value

    def fraction(v: Any, w: str, upper_open: bool) -> float:
        value = _number(v, w, float)
        if not 0.0 <= value <= 1.0 or (upper_open and value == 1.0):
            raise OpticalError(f"{w}: {value} must be in [0, 1{')' if upper_open else ']'}")
        return value

    def named(table: dict, kind: str):
        def parse(v: Any, w: str) -> str:
            if str(v) not in table:
                raise OpticalError(f"{w}: unknown {kind} {v!r}; defined {kind}s: {', '.join(table)}")
            return str(v)

        return parse

    return GridAxes(
        languages=axis("languages", _language, []),
        methods=axis("methods", lambda v, w: str(v) if str(v) in variants else _method(v, w), []),
        seeds=axis("seeds", lambda v, w: _number(v, w, int), [0]),
        budgets=axis("budgets", budget, [2000]),
        noises=axis("noises", lambda v, w: fraction(v, w, True), [0.0]),
        backbones=axis("backbones", named(backbones, "backbone"), list(backbones)),
        domains=axis("domains", named(domains, "domain"), list(domains)),
        query_noises=axis("query_noises", lambda v, w: fraction(v, w, False), [0.0]),
    )


def _parse_model(spec: Any, where: str, allow_projection: bool = True) -> ModelSpec:
    if isinstance(spec, str):
        return ModelSpec(name=spec)
    if not isinstance(spec, dict):
        raise OpticalError(f"{where}: give a model name, {{model: NAME, projection: BOOL}} or {{tiny: {{...}}}}")
    _check_keys(spec, ("model", "tiny", "projection") if allow_projection else ("model", "tiny"), where)
    if ("model" in spec) == ("tiny" in spec):
        raise OpticalError(f"{where}: give exactly one of 'model' or 'tiny'")
    projection = bool(spec.get("projection", False))
    if "model" in spec:
        return ModelSpec(name=str(spec["model"]), projection=projection)
    tiny = spec["tiny"] or {}
    if not isinstance(tiny, dict):
        raise OpticalError(f"{where}: tiny must be a mapping of {', '.join(TINY_KEYS)}")
    _check_keys(tiny, TINY_KEYS, f"{where}.tiny")
    options = tuple(sorted((k, _number(v, f"{where}.tiny.{k}", int)) for k, v in tiny.items()))
    try:
        check_tiny_shape(**dict(options))
    except OpticalError as exc:
        raise OpticalError(f"{where}.tiny: {exc}") from None
    return ModelSpec(tiny=options, projection=projection)


def _parse_backbones(raw: Any, teacher: Any, source: str) -> dict[str, ModelSpec]:
    if not isinstance(raw, dict) or not raw:
        raise OpticalError(f"{source}: backbones must map a name to a model spec (e.g. e5-small: multilingual-e5-small)")
    fallback = teacher if teacher is not None else "multilingual-e5-small"
    return {
        str(name): _parse_model(fallback if spec is None else spec, f"{source}: backbones.{name}") for name, spec in raw.items()
    }


def _parse_domains(raw: Any, source: str) -> dict[str, list[str]]:
    if not isinstance(raw, dict) or not raw:
        raise OpticalError(f"{source}: domains must map a name to a list of bitext sources")
    domains = {}
    for name, sources in raw.items():
        sources = _as_list(sources, f"{source}: domains.{name}")
        for item in sources:
            try:
                get_source(str(item))
            except OpticalError as exc:
                raise OpticalError(f"{source}: domains.{name}: {exc}") from None
        domains[str(name)] = [str(s) for s in sources]
    return domains


def _parse_base(values: Any, cls: type, reserved: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise OpticalError(f"{where} must be a mapping of {cls.__name__} fields")
    known = {f.name for f in dataclasses.fields(cls)}
    _check_keys(values, tuple(sorted(known - set(reserved))), where)
    return dict(values)


def _check_base_values(config: StudyConfig) -> None:
    """Build one DistillConfig and EvalConfig from the base sections so their own checks run now."""
    lang = config.axes.languages[0]
    grids = [(f"{config.source}: base.distill", config.axes)] + [
        (f"{config.source}: cells[{i}].distill (trial {cell.trial})" if cell.distill else f"{config.source}: base.distill", cell)
        for i, cell in enumerate(config.cells)
    ]
    methods = {m for _, grid in grids for m in grid.methods if m != ZERO_SHOT}
    named = set(config.base_distill.get("loss_options") or {})
    unused = sorted(loss for loss in named if not any(MethodSpec.parse(config.loss_method(m)).uses(loss) for m in methods))
    if unused:
        raise OpticalError(
            f"{config.source}: base.distill.loss_options names {', '.join(unused)}, which no method of the study uses"
        )
    # A variant no grid asks for yet is checked too: its mistake should not wait for the day a grid names it.
    unplanned = sorted(set(config.variants) - {m for _, grid in grids for m in grid.methods})
    checks = [(where, grid.methods, grid.distill) for where, grid in grids] + [("", unplanned, {})]
    for where, grid_methods, grid_distill in checks:
        for method in grid_methods:
            if method == ZERO_SHOT:
                continue
            loss_method = config.loss_method(method)
            values = run_distill_values(loss_method, config.method_distill(method), grid_distill)
            frozen = not grid_distill and (method in config.per_method or method in config.variants)
            label = (
                f"{config.source}: {'variants' if method in config.variants else 'base.per_method'}.{method}" if frozen else where
            )
            try:
                DistillConfig(lang=lang, method=loss_method, out_dir="", **values).validate()
            except (OpticalError, TypeError) as exc:
                raise OpticalError(f"{label}: {exc}") from None
    asked = config.base_eval.get("tasks") or [str(task) for task in TASKS]
    try:  # a language's runs evaluate the study's tasks it has data for (study.grid), so check those
        EvalConfig(
            student=ZERO_SHOT, out_dir="", langs=[lang], **{**config.base_eval, "tasks": supported_tasks(asked, lang)}
        ).validate()
    except (OpticalError, TypeError) as exc:
        raise OpticalError(f"{config.source}: base.eval: {exc}") from None
