"""What every distillation loss sees and returns.

A training step has a batch of bitext pairs (English e, foreign x). The frozen
teacher's view of e comes from the teacher cache; the student encodes x (and,
for losses that ask for it, e too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from optical.models.outputs import TokenEmbeddings


@dataclass
class DistillBatch:
    """Inputs of a distillation loss for one batch of B bitext pairs.

    Attributes:
        student_foreign: student(x), the foreign side.
        teacher_english: teacher(e), the English side (frozen, usually cached).
        student_english: student(e); only computed when a loss sets
            ``needs_student_english`` (it costs a second student forward).
        student_token_ids / teacher_token_ids: ``[B, n]`` / ``[B, m]`` input ids
            aligned with the embeddings, for marginals weighted by IDF.
    """

    student_foreign: TokenEmbeddings
    teacher_english: TokenEmbeddings
    student_english: TokenEmbeddings | None = None
    student_token_ids: torch.Tensor | None = None
    teacher_token_ids: torch.Tensor | None = None


@dataclass
class LossOutput:
    """A scalar loss and the numbers worth logging about it."""

    loss: torch.Tensor
    logs: dict[str, float] = field(default_factory=dict)


class DistillLoss(nn.Module):
    """Base class: ``forward(batch) -> LossOutput``."""

    #: Name used on the command line (``--method``).
    name: str = ""
    #: Whether the loss needs student(e) in the batch.
    needs_student_english: bool = False

    def forward(self, batch: DistillBatch) -> LossOutput:  # pragma: no cover - interface
        raise NotImplementedError
