"""Weighted sums of distillation losses, parsed from a method string.

``"ot"``, ``"ot+mse"`` or ``"ot:1.0+mse:0.5"``: each term is a registered loss
name with an optional weight (default 1). The total is sum_k w_k L_k.

The string is parsed once into a frozen :class:`MethodSpec`, which every layer
asks instead of looking into the string:

    >>> spec = MethodSpec.parse("ot+mse:0.5")
    >>> spec.uses("ot"), spec.weight("mse"), str(spec)
    (True, 0.5, 'ot+mse:0.5')
    >>> MethodSpec.parse("mse").is_kd_baseline
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from optical.errors import OpticalError
from optical.losses.base import DistillBatch, DistillLoss, LossOutput, positive
from optical.losses.contrastive import ContrastiveLoss
from optical.losses.hard_align import HardAlignLoss
from optical.losses.mse import MSELoss
from optical.losses.ot import OTLoss

LOSSES: dict[str, type[DistillLoss]] = {cls.name: cls for cls in (OTLoss, MSELoss, ContrastiveLoss, HardAlignLoss)}


@dataclass(frozen=True)
class MethodTerm:
    name: str
    weight: float


@dataclass(frozen=True)
class MethodSpec:
    """A parsed ``--method``: the loss terms and their weights, in the order given."""

    terms: tuple[MethodTerm, ...]

    @classmethod
    def parse(cls, method: str | MethodSpec) -> MethodSpec:
        """Parse ``"ot:1+mse:0.5"``; one-line :class:`OpticalError` for anything else."""
        if isinstance(method, MethodSpec):
            return method
        usage = f"use NAME[:WEIGHT][+NAME[:WEIGHT]...] with NAME in {', '.join(LOSSES)}, e.g. ot+mse:0.5"
        if not method or not method.strip():
            raise OpticalError(f"empty --method; {usage}")
        terms: list[MethodTerm] = []
        for part in method.split("+"):
            name, sep, weight_text = part.strip().partition(":")
            if name not in LOSSES:
                raise OpticalError(f"unknown method {name!r} in {method!r}; {usage}")
            weight = 1.0
            if sep:
                try:
                    weight = float(weight_text)
                except ValueError:
                    raise OpticalError(f"weight {weight_text!r} of {name!r} in {method!r} is not a number; {usage}") from None
                if not positive(weight):
                    raise OpticalError(f"weight of {name!r} in {method!r} must be > 0 and finite, got {weight_text}")
            if any(term.name == name for term in terms):
                raise OpticalError(f"method {name!r} appears twice in {method!r}; give it once with a weight")
            terms.append(MethodTerm(name, weight))
        return cls(tuple(terms))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(term.name for term in self.terms)

    def uses(self, name: str) -> bool:
        """Whether loss ``name`` (``"ot"``) is one of the terms."""
        return name in self.names

    def weight(self, name: str) -> float | None:
        """The weight of loss ``name``, or None when the method does not use it."""
        return next((term.weight for term in self.terms if term.name == name), None)

    @property
    def needs_student_english(self) -> bool:
        return any(LOSSES[name].needs_student_english for name in self.names)

    @property
    def is_kd_baseline(self) -> bool:
        """Only sentence-level KD losses (``mse``, ``contrastive``, ``mse:0.5``, ``mse+contrastive``):
        no token alignment. A weight on a single term only scales the loss."""
        return all(LOSSES[name].kd_baseline for name in self.names)

    def __str__(self) -> str:
        """The canonical spelling: weights of 1 left out (``ot:1+mse:0.5`` -> ``ot+mse:0.5``)."""
        return "+".join(t.name if t.weight == 1.0 else f"{t.name}:{t.weight:g}" for t in self.terms)


def parse_method(method: str) -> list[MethodTerm]:
    """The terms of ``method`` (see :meth:`MethodSpec.parse`)."""
    return list(MethodSpec.parse(method).terms)


def check_loss_options(method: str | MethodSpec, options: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Typed per-loss options for ``method``; one-line errors for a loss the method does not use,
    an unknown option or a value of the wrong type."""
    spec = MethodSpec.parse(method)
    options = options or {}
    unknown = sorted(set(options) - set(LOSSES))
    if unknown:
        raise OpticalError(f"options given for unknown loss(es) {unknown}; known: {', '.join(LOSSES)}")
    stray = sorted(set(options) - set(spec.names))
    if stray:
        raise OpticalError(f"--loss-opt names {', '.join(stray)}, which --method {str(spec)!r} does not use")
    checked = {}
    for name, values in options.items():
        if not isinstance(values, dict):
            raise OpticalError(f"loss_options.{name} must be a mapping of option names to values, got {values!r}")
        checked[name] = LOSSES[name].check_options(values)
    return checked


class CombinedLoss(DistillLoss):
    """sum_k w_k L_k over the parsed terms."""

    def __init__(self, terms: list[MethodTerm], losses: list[DistillLoss]) -> None:
        super().__init__()
        self.terms = terms
        self.losses = nn.ModuleList(losses)
        self.name = str(MethodSpec(tuple(terms)))
        self.needs_student_english = any(loss.needs_student_english for loss in losses)

    def forward(self, batch: DistillBatch) -> LossOutput:
        total: torch.Tensor | None = None
        logs: dict[str, float | torch.Tensor] = {}
        for term, loss_fn in zip(self.terms, self.losses):
            out = loss_fn(batch)
            weighted = term.weight * out.loss
            total = weighted if total is None else total + weighted
            logs.update(out.logs)
        logs["loss"] = total.detach()
        return LossOutput(total, logs)


def build_loss(
    method: str | MethodSpec,
    options: dict[str, dict[str, Any]] | None = None,
    internal: dict[str, dict[str, Any]] | None = None,
) -> CombinedLoss:
    """Build the loss for ``method`` with per-loss user options, e.g. ``{"ot": {"eps": 0.05}}``,
    and per-loss ``internal`` arguments the trainer computes (``{"ot": {"center": tensor}}``)."""
    spec = MethodSpec.parse(method)
    options = options or {}
    unknown = set(options) - set(LOSSES)
    if unknown:
        raise OpticalError(f"options given for unknown loss(es) {sorted(unknown)}; known: {', '.join(LOSSES)}")
    internal = internal or {}
    losses = [LOSSES[t.name].from_options(options.get(t.name), **internal.get(t.name, {})) for t in spec.terms]
    return CombinedLoss(list(spec.terms), losses)
