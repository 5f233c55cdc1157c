"""The configuration of one distillation run."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from optical.data.bitext import BitextConfig, bitext_language, check_license_classes
from optical.errors import OpticalError, check_field_types
from optical.losses.combined import MethodSpec, check_loss_options
from optical.models.registry import DEFAULT_MODELS, ModelKind
from optical.storage import load_yaml_file
from optical.train.selection import SELECTION_METRICS, SelectOn

Device = Literal["auto", "cpu", "cuda"]
#: Bound of every count (batch size, epochs, steps, pairs): beyond it a run could never finish, and torch's
#: 32-bit sizes would overflow first.
MAX_COUNT = 2**31 - 1
#: The largest float32 and its smallest positive normal value: a learning rate outside them becomes inf or vanishes
#: (or goes subnormal) in the float32 optimizer step.
_FLOAT32_MAX = 3.4028234663852886e38
_FLOAT32_TINY = 1.1754943508222875e-38


def check_model_names(named: tuple[tuple[str, str | None, ModelKind], ...]) -> None:
    """Refuse an empty model flag (``--teacher ''``: as a path it is the current directory), and a default model
    named for the other job (``--teacher opus-mt-zh-en``, an MT model)."""
    for flag, name, kind in named:
        if name is not None and not str(name).strip():
            raise OpticalError(f"{flag} is empty; give a default model name, a model directory or a hub name")
        model = DEFAULT_MODELS.get(str(name))
        if model is not None and model.kind is not kind:
            fitting = ", ".join(n for n, m in DEFAULT_MODELS.items() if m.kind is kind)
            article = "an" if kind is ModelKind.ENCODER else "a"
            raise OpticalError(
                f"{flag} {name} is the default {model.kind}, not {article} {kind}; give {fitting}, a directory or a hub name"
            )


MixedPrecision = Literal["auto", "no", "bf16", "fp16"]
DEVICES: tuple[str, ...] = get_args(Device)
PRECISIONS: tuple[str, ...] = get_args(MixedPrecision)

#: The fields with a fixed set of values, their command-line flag and the values: checked in one place.
CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "select_on": ("--select-on", SELECTION_METRICS),
    "device": ("--device", DEVICES),
    "mixed_precision": ("--mixed-precision", PRECISIONS),
}


#: Fields that never change the trained weights.
NOT_IN_FINGERPRINT = frozenset({"out_dir", "tensorboard", "data_dir", "device", "keep_checkpoint"})
#: Fields added after runs were recorded, with the value that gives what those runs did: ``to_dict`` leaves
#: them out at that value, and a ``run.json`` without them reads back with it (see RunRecord.from_dict).
LEGACY_VALUES: dict[str, Any] = {"length_grouping": False, "keep_checkpoint": False, "evals_per_epoch": 1}


@dataclass
class DistillConfig:
    """Everything that determines a distilled student (and nothing that does not).

    The bitext fields are handed to :func:`optical.data.build_bitext`; the loss
    fields to :func:`optical.losses.build_loss`.
    """

    lang: str
    method: str
    out_dir: str
    sources: list[str] = field(default_factory=lambda: ["xnli_devtest", "ntrex128", "flores200_sib_dev_extra"])
    budget: int | None = 4000
    noise: float = 0.0
    license_classes: list[str] = field(default_factory=lambda: ["open", "non-commercial", "research-only"])
    seed: int = 0
    teacher: str = "multilingual-e5-small"
    student: str | None = None  # None: a copy of the teacher
    projection: bool = False  # linear map student hidden -> teacher hidden
    freeze_embeddings: bool = True
    loss_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    center_costs: bool = False  # subtract the teacher's mean token vector inside the OT cost
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    epochs: int = 1
    max_length: int = 64
    select_on: SelectOn = "xquad_dev"
    eval_every: int = 0  # steps between dev evaluations; 0: only at the end of each epoch
    # Dev evaluations spread evenly over each epoch (4: every quarter epoch), so that selection sees the
    # run between its start and its end; 1: at the end of the epoch only.
    evals_per_epoch: int = 1
    checkpoint_every: int = 50
    device: Device = "auto"
    # auto: bf16 where the device computes it natively (a CPU with AVX512-BF16/AMX, a bf16 CUDA device), else
    # fp32; a run records the precision it used (see resolved()).
    mixed_precision: MixedPrecision = "auto"
    length_grouping: bool = True  # batches of similar length in a seeded random order (less padding)
    keep_checkpoint: bool = False  # keep checkpoint/ in the finished run (only needed to resume)
    tensorboard: bool = False
    data_dir: str | None = None

    def validate(self) -> None:
        """Everything that can be checked before data, models or the teacher cache are touched."""
        for name, (flag, allowed) in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise OpticalError(f"{flag} {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        check_field_types(self, "config")
        check_model_names((("--teacher", self.teacher, ModelKind.ENCODER), ("--student", self.student, ModelKind.ENCODER)))
        bitext_language(self.lang)
        check_loss_options(self.method_spec, self.loss_options)
        for name in ("batch_size", "grad_accum", "epochs", "max_length", "checkpoint_every", "evals_per_epoch"):
            if not 1 <= getattr(self, name) <= MAX_COUNT:
                raise OpticalError(f"{name} must be in 1..{MAX_COUNT}, got {getattr(self, name)}")
        for flag, value in (("--eval-every", self.eval_every), ("--budget", self.budget)):
            if value is not None and value > MAX_COUNT:
                raise OpticalError(f"{flag} must be at most {MAX_COUNT}, got {value}")
        check_license_classes(self.license_classes)
        if self.budget is not None and self.budget < 1:
            raise OpticalError(f"--budget must be >= 1, got {self.budget}")
        if not 0.0 <= self.noise < 1.0:
            raise OpticalError(f"--noise must be in [0, 1), got {self.noise}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise OpticalError(f"--lr must be a finite number > 0, got {self.lr}")
        if not _FLOAT32_TINY <= self.lr <= _FLOAT32_MAX:  # the optimizer's float32 step would be inf (or 0)
            raise OpticalError(
                f"--lr {self.lr:g} is outside what float32 weights can take ({_FLOAT32_TINY:g} to {_FLOAT32_MAX:g})"
            )
        if not 0 <= self.seed < 2**32:
            raise OpticalError(f"--seed must be in [0, 2**32), got {self.seed}")
        if self.eval_every < 0:
            raise OpticalError(f"--eval-every must be >= 0 (0: at the end of each epoch), got {self.eval_every}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise OpticalError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0.0 <= self.warmup_ratio <= 1.0:
            raise OpticalError(f"warmup_ratio must be in [0, 1], got {self.warmup_ratio}")
        if not (math.isfinite(self.max_grad_norm) and self.max_grad_norm >= 0):
            raise OpticalError(f"max_grad_norm must be a finite number >= 0 (0: no clipping), got {self.max_grad_norm}")
        if self.select_on == "heldout_align":
            from optical.data.bitext import SELECTION_SOURCE
            from optical.data.sources import get_source

            lang = bitext_language(self.lang)
            if lang.code not in get_source(SELECTION_SOURCE).languages:
                raise OpticalError(
                    f"--select-on heldout_align holds out {SELECTION_SOURCE} pairs, which {lang.code} ({lang.name}) lacks; "
                    "use --select-on none (keep the last step)"
                )
        if self.select_on == "flores_dev" and "flores200_sib_dev_extra" in self.sources:
            raise OpticalError(
                "--select-on flores_dev selects on flores200_sib_dev_extra, which is also a training source; "
                "drop it from --bitext"
            )

    def bitext_config(self) -> BitextConfig:
        """The bitext this run trains on."""
        return BitextConfig(
            lang=self.lang,
            sources=list(self.sources),
            budget=self.budget,
            seed=self.seed,
            noise_fraction=self.noise,
            license_classes=list(self.license_classes),
            hold_out_selection=self.select_on == "heldout_align",
        )

    @property
    def method_spec(self) -> MethodSpec:
        """``method`` parsed (the string itself stays the field, so fingerprints keep their value)."""
        return MethodSpec.parse(self.method)

    def resolved(self) -> DistillConfig:
        """This config with ``mixed_precision: auto`` made concrete for this machine's device, which is what a
        run records and what its fingerprint hashes: an ``auto`` run and one that names the same precision are
        the same run, and runs on machines that resolve ``auto`` differently are not."""
        if self.mixed_precision != "auto":
            return self
        from optical.train.precision import resolve_precision  # imports torch: not at CLI start-up

        return dataclasses.replace(self, mixed_precision=resolve_precision(self.device, self.mixed_precision))

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values; a field added after runs were recorded is left out while it holds the
        value that reproduces those runs (:data:`LEGACY_VALUES`), so their fingerprints and files stay as they were."""
        values = dataclasses.asdict(self)
        return {k: v for k, v in values.items() if k not in LEGACY_VALUES or v != LEGACY_VALUES[k]}

    def training_fingerprint(self) -> str:
        """Hash of every field that changes the trained weights (not where they are written)."""
        content = {k: v for k, v in self.resolved().to_dict().items() if k not in NOT_IN_FINGERPRINT}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, values: dict[str, Any], origin: str = "config") -> DistillConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise OpticalError(f"{origin}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
        missing = sorted(f.name for f in dataclasses.fields(cls) if f.name not in values and _required(f))
        if missing:
            raise OpticalError(f"{origin}: missing key(s) {', '.join(missing)}")
        config = cls(**values)
        check_field_types(config, origin)
        return config

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> DistillConfig:
        """The config of a YAML file of DistillConfig keys, or of a finished run's ``run.json`` (JSON is YAML).

        A ``run.json`` gives the run's full config, with the values of older runs filled in (:data:`LEGACY_VALUES`),
        so that any committed study cell can be rebuilt from its export; its ``out_dir`` must then come from
        ``overrides``, so that the rebuild never resumes or overwrites the original. ``overrides`` that are not None win.
        """
        path = Path(path)
        values = load_yaml_file(path, "config file")
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise OpticalError(f"config file {path} must hold a mapping of keys to values")
        given = {k: v for k, v in overrides.items() if v is not None}
        if isinstance(values.get("config"), dict) and "fingerprint" in values:
            if "out_dir" not in given:
                raise OpticalError(f"{path} is a run's record: give --out for the rebuilt run (the original is not touched)")
            # The record's config as RunRecord.from_dict reads it (that module imports this one: no cycle back).
            recorded = cls.from_dict({**LEGACY_VALUES, **values["config"]}, origin=f"{path}: config")
            values = dataclasses.asdict(recorded)
        values.update(given)
        config = cls.from_dict(values, origin=str(path))
        try:
            config.validate()
        except OpticalError as exc:  # name the file: the value may come from it
            raise OpticalError(f"{path}: {exc}") from None
        return config


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
