"""Weighted sums of distillation losses, parsed from a method string.

``"ot"``, ``"ot+mse"`` or ``"ot:1.0+mse:0.5"``: each term is a registered loss
name with an optional weight (default 1). The total is sum_k w_k L_k.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from optical.errors import OpticalError
from optical.losses.base import DistillBatch, DistillLoss, LossOutput
from optical.losses.contrastive import ContrastiveLoss
from optical.losses.hard_align import HardAlignLoss
from optical.losses.mse import MSELoss
from optical.losses.ot import OTLoss

LOSSES: dict[str, type[DistillLoss]] = {
    cls.name: cls for cls in (OTLoss, MSELoss, ContrastiveLoss, HardAlignLoss)
}


@dataclass(frozen=True)
class MethodTerm:
    name: str
    weight: float


def parse_method(method: str) -> list[MethodTerm]:
    """Parse ``"ot:1+mse:0.5"`` into terms; one-line errors for anything else."""
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
            if not weight > 0:
                raise OpticalError(f"weight of {name!r} in {method!r} must be > 0, got {weight_text}")
        if any(term.name == name for term in terms):
            raise OpticalError(f"method {name!r} appears twice in {method!r}; give it once with a weight")
        terms.append(MethodTerm(name, weight))
    return terms


class CombinedLoss(DistillLoss):
    """sum_k w_k L_k over the parsed terms."""

    def __init__(self, terms: list[MethodTerm], losses: list[DistillLoss]) -> None:
        super().__init__()
        self.terms = terms
        self.losses = nn.ModuleList(losses)
        self.name = "+".join(t.name if t.weight == 1.0 else f"{t.name}:{t.weight:g}" for t in terms)
        self.needs_student_english = any(loss.needs_student_english for loss in losses)

    def forward(self, batch: DistillBatch) -> LossOutput:
        total: torch.Tensor | None = None
        logs: dict[str, float] = {}
        for term, loss_fn in zip(self.terms, self.losses):
            out = loss_fn(batch)
            weighted = term.weight * out.loss
            total = weighted if total is None else total + weighted
            logs.update(out.logs)
        logs["loss"] = float(total.detach())
        return LossOutput(total, logs)


def build_loss(method: str, options: dict[str, dict[str, Any]] | None = None) -> CombinedLoss:
    """Build the loss for ``method`` with per-loss keyword options, e.g. ``{"ot": {"eps": 0.05}}``."""
    options = options or {}
    terms = parse_method(method)
    unknown = set(options) - set(LOSSES)
    if unknown:
        raise OpticalError(f"options given for unknown loss(es) {sorted(unknown)}; known: {', '.join(LOSSES)}")
    losses = []
    for term in terms:
        try:
            losses.append(LOSSES[term.name](**options.get(term.name, {})))
        except TypeError as exc:
            raise OpticalError(f"bad option for loss {term.name!r}: {exc}") from None
    return CombinedLoss(terms, losses)
