"""Optimal-transport solvers, POT-style: one module per topic, result objects.

``optical.ot.sinkhorn`` -- batched, masked, log-domain entropic OT (balanced and
unbalanced) used by the OPTICAL distillation losses.
"""

from optical.ot.sinkhorn import OTResult, sinkhorn

__all__ = ["OTResult", "sinkhorn"]
