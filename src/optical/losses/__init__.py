"""Distillation losses, one per module (the OPTICAL OT loss and the KD baselines).

* :mod:`optical.losses.ot` -- OPTICAL, <P*, C> between token embeddings
* :mod:`optical.losses.mse` -- standard KD on pooled embeddings
* :mod:`optical.losses.contrastive` -- bitext InfoNCE with in-batch negatives
* :mod:`optical.losses.hard_align` -- argmax token alignment (ablation)
* :mod:`optical.losses.combined` -- weighted sums, parsed from ``"ot+mse:0.5"``
"""

from optical.losses.base import DistillBatch, DistillLoss, LossOutput
from optical.losses.combined import LOSSES, CombinedLoss, MethodTerm, build_loss, parse_method
from optical.losses.contrastive import ContrastiveLoss
from optical.losses.hard_align import HardAlignLoss
from optical.losses.mse import MSELoss
from optical.losses.ot import OTLoss

__all__ = [
    "LOSSES",
    "CombinedLoss",
    "ContrastiveLoss",
    "DistillBatch",
    "DistillLoss",
    "HardAlignLoss",
    "LossOutput",
    "MSELoss",
    "MethodTerm",
    "OTLoss",
    "build_loss",
    "parse_method",
]
