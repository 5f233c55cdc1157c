"""Standard knowledge distillation by mean squared error on sentence embeddings.

Reimers & Gurevych, "Making Monolingual Sentence Embeddings Multilingual using
Knowledge Distillation", EMNLP 2020 (arXiv:2004.09813). For a batch of pairs
(e_i, x_i) with pooled student embeddings s(.) and frozen teacher t(.):

    L = 1/B sum_i ( ||s(x_i) - t(e_i)||^2 + ||s(e_i) - t(e_i)||^2 ) / H

The second term keeps the student's English where the teacher's is, so that
English retrieval does not degrade. Pooled vectors are L2-normalised, as at
search time. Dividing by the hidden size H matches ``torch.nn.MSELoss``.

Options: none.

Example:
    >>> from optical.losses import DistillBatch
    >>> batch = DistillBatch.random(seed=0)   # batch.student_english must be set
    >>> out = MSELoss()(batch)
    >>> sorted(out.logs), bool(out.loss > 0)
    (['mse', 'mse_foreign'], True)
"""

from __future__ import annotations

import torch.nn.functional as F

from optical.losses.base import DistillBatch, DistillLoss, LossOutput


class MSELoss(DistillLoss):
    """Pooled student(x) -> teacher(e) plus student(e) -> teacher(e)."""

    name = "mse"
    needs_student_english = True
    kd_baseline = True

    def forward(self, batch: DistillBatch) -> LossOutput:
        target = batch.teacher_english.pooled.float()
        foreign = F.mse_loss(batch.student_foreign.pooled.float(), target)
        english = F.mse_loss(batch.student_english.pooled.float(), target)
        loss = foreign + english
        return LossOutput(loss, {"mse": loss.detach(), "mse_foreign": foreign.detach()})
