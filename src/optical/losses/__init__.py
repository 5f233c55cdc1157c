"""Distillation losses, one per module (the OPTICAL OT loss and the KD baselines).

* :mod:`optical.losses.ot` -- OPTICAL, <P*, C> between token embeddings
* :mod:`optical.losses.mse` -- standard KD on pooled embeddings
* :mod:`optical.losses.contrastive` -- bitext InfoNCE with in-batch negatives
* :mod:`optical.losses.hard_align` -- argmax token alignment (ablation)
* :mod:`optical.losses.combined` -- weighted sums, parsed once from ``"ot+mse:0.5"`` into a
  :class:`MethodSpec`

Each loss declares its user options (``OPTIONS``, a tuple of :class:`LossOption`).

The names below are imported from their modules on first use (:mod:`optical._lazy`).
"""

from optical._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "optical.losses.base": ("DistillBatch", "DistillLoss", "LossOption", "LossOutput"),
        "optical.losses.combined": (
            "LOSSES",
            "CombinedLoss",
            "MethodSpec",
            "MethodTerm",
            "build_loss",
            "check_loss_options",
            "parse_method",
        ),
        "optical.losses.contrastive": ("ContrastiveLoss",),
        "optical.losses.hard_align": ("HardAlignLoss",),
        "optical.losses.mse": ("MSELoss",),
        "optical.losses.ot": ("OTLoss",),
    },
)
