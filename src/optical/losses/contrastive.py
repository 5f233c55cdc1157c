"""Bitext contrastive distillation (InfoNCE with in-batch negatives).

The translation-ranking objective of Feng et al., "Language-agnostic BERT
Sentence Embedding", ACL 2022 (arXiv:2007.01852) and of van den Oord et al.'s
InfoNCE (arXiv:1807.03748), with the frozen teacher's English embedding as the
positive key of the student's foreign query:

    L = - 1/B sum_i log( exp(<s(x_i), t(e_i)> / T) / sum_j exp(<s(x_i), t(e_j)> / T) )

Pooled vectors are L2-normalised; T is the temperature. Other English sentences
of the batch are the negatives, so the student must not only approach its
translation but also stay away from the others.

By default only that foreign-to-English direction is trained (``directions=x2en``),
so nothing penalises a foreign vector that sits close to many English ones (a hub
for English-to-foreign retrieval). ``directions=both`` averages it with the
English-to-foreign direction, in which each teacher English vector ranks the
batch's foreign student vectors (LaBSE's bidirectional loss, without its additive
margin):

    L_both = 1/2 (L + L'),  L' = - 1/B sum_i log( exp(<s(x_i), t(e_i)> / T) / sum_j exp(<s(x_j), t(e_i)> / T) )

Options: ``contrastive.temperature`` (float > 0, default 0.05),
``contrastive.directions`` (x2en | both, default x2en).

Example:
    >>> from optical.losses import DistillBatch
    >>> batch = DistillBatch.random(seed=0)
    >>> out = ContrastiveLoss(temperature=0.05)(batch)
    >>> sorted(out.logs), bool(out.loss >= 0)
    (['contrastive', 'inbatch_acc'], True)
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from optical.losses.base import DistillBatch, DistillLoss, LossOption, LossOutput, positive

#: ``x2en``: each foreign sentence ranks the batch's English ones; ``both``: also each English one the foreign ones.
DIRECTIONS = ("x2en", "both")


class ContrastiveLoss(DistillLoss):
    """InfoNCE between pooled student(x) and teacher(e) with in-batch negatives."""

    name = "contrastive"
    kd_baseline = True
    OPTIONS = (
        LossOption(
            "temperature", float, 0.05, "softmax temperature T of the in-batch logits", check=positive, constraint="> 0, finite"
        ),
        LossOption(
            "directions",
            str,
            "x2en",
            "x2en: each foreign sentence ranks the batch's English ones; both: also each English one ranks the foreign ones",
            choices=DIRECTIONS,
        ),
    )

    def __init__(self, temperature: float = 0.05, directions: Literal["x2en", "both"] = "x2en") -> None:
        super().__init__()
        checked = self.check_options({"temperature": temperature, "directions": directions})
        self.temperature, self.directions = checked["temperature"], checked["directions"]

    def forward(self, batch: DistillBatch) -> LossOutput:
        queries = batch.student_foreign.pooled.float()
        keys = batch.teacher_english.pooled.float()
        logits = queries @ keys.T / self.temperature
        targets = torch.arange(len(queries), device=logits.device)
        loss = F.cross_entropy(logits, targets)
        if self.directions == "both":
            loss = (loss + F.cross_entropy(logits.T, targets)) / 2
        accuracy = (logits.argmax(-1) == targets).float().mean()
        return LossOutput(loss, {"contrastive": loss.detach(), "inbatch_acc": accuracy.detach()})
