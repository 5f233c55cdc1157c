"""Hard token alignment: the OPTICAL ablation without optimal transport.

Each student content token s_i of the foreign sentence is pulled towards the
teacher content token of the English sentence it is most similar to,

    j*(i) = argmax_j cos(s_i, t_j),     L = 1/|S| sum_i (1 - cos(s_i, t_{j*(i)})),

averaged over the content tokens of the batch. This is alignment by argmax,
the "greedy" matching that OPTICAL (Huang et al., WSDM 2023,
arXiv:2301.12566) replaces by a transport plan: nothing stops many foreign
tokens from collapsing onto one English token, and nothing forces every
English token to be matched.

Options: none.

Example:
    >>> from optical.losses import DistillBatch
    >>> batch = DistillBatch.random(seed=0)
    >>> out = HardAlignLoss()(batch)
    >>> list(out.logs), bool(0.0 <= out.loss <= 2.0)
    (['hard_align'], True)
"""

from __future__ import annotations

import torch.nn.functional as F

from optical.losses.base import DistillBatch, DistillLoss, LossOutput

_MASKED = -2.0  # below any cosine, so masked teacher tokens are never chosen


class HardAlignLoss(DistillLoss):
    """Cosine distance of each student token to its argmax teacher token."""

    name = "hard_align"

    def forward(self, batch: DistillBatch) -> LossOutput:
        student, teacher = batch.student_foreign, batch.teacher_english
        s = F.normalize(student.embeddings.float(), dim=-1)
        t = F.normalize(teacher.embeddings.float(), dim=-1)
        cos = s @ t.transpose(1, 2)
        cos = cos.masked_fill(~teacher.content_mask[:, None, :], _MASKED)
        best = cos.max(-1).values  # the argmax choice is not differentiated; its cosine is
        valid = student.content_mask & teacher.content_mask.any(-1, keepdim=True)
        distance = (1.0 - best)[valid]
        loss = distance.mean() if distance.numel() else best.sum() * 0.0
        return LossOutput(loss, {"hard_align": loss.detach()})
