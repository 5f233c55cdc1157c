"""Optimal-transport solvers, POT-style: private modules by topic, public names here.

:func:`sinkhorn` (defined in ``optical.ot._sinkhorn``) -- batched, masked, log-domain
entropic OT (balanced and unbalanced) used by the OPTICAL distillation losses; it returns
an :class:`OTResult`. Imported on first use (:mod:`optical._lazy`): torch loads then.
"""

from optical._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "optical.ot._sinkhorn": ("OTResult", "sinkhorn"),
    },
)
