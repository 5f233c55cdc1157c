"""Bitext contrastive distillation (InfoNCE with in-batch negatives).

The translation-ranking objective of Feng et al., "Language-agnostic BERT
Sentence Embedding", ACL 2022 (arXiv:2007.01852) and of van den Oord et al.'s
InfoNCE (arXiv:1807.03748), with the frozen teacher's English embedding as the
positive key of the student's foreign query:

    L = - 1/B sum_i log( exp(<s(x_i), t(e_i)> / T) / sum_j exp(<s(x_i), t(e_j)> / T) )

Pooled vectors are L2-normalised; T is the temperature. Other English sentences
of the batch are the negatives, so the student must not only approach its
translation but also stay away from the others. Only the foreign-to-English
direction is trained (the teacher is frozen): LaBSE sums both directions and adds
a margin, so nothing here keeps the student's foreign vectors apart from each
other, which English-to-foreign retrieval over them needs.

Options: ``contrastive.temperature`` (float > 0, default 0.05).

Example:
    >>> from optical.losses import DistillBatch
    >>> batch = DistillBatch.random(seed=0)
    >>> out = ContrastiveLoss(temperature=0.05)(batch)
    >>> sorted(out.logs), bool(out.loss >= 0)
    (['contrastive', 'inbatch_acc'], True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from optical.losses.base import DistillBatch, DistillLoss, LossOption, LossOutput, positive


class ContrastiveLoss(DistillLoss):
    """InfoNCE between pooled student(x) and teacher(e) with in-batch negatives."""

    name = "contrastive"
    kd_baseline = True
    OPTIONS = (
        LossOption("temperature", float, 0.05, "softmax temperature T of the in-batch logits", check=positive, constraint="> 0"),
    )

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        self.temperature = self.check_options({"temperature": temperature})["temperature"]

    def forward(self, batch: DistillBatch) -> LossOutput:
        queries = batch.student_foreign.pooled.float()
        keys = batch.teacher_english.pooled.float()
        logits = queries @ keys.T / self.temperature
        targets = torch.arange(len(queries), device=logits.device)
        loss = F.cross_entropy(logits, targets)
        accuracy = (logits.argmax(-1) == targets).float().mean()
        return LossOutput(loss, {"contrastive": loss.detach(), "inbatch_acc": accuracy.detach()})
