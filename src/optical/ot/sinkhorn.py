r"""Batched, masked, log-domain entropic optimal transport (Sinkhorn) in torch.

Problem
-------
For a batch of cost matrices :math:`C_b \in \mathbb{R}^{n \times m}` and marginals
:math:`a_b, b_b` the balanced problem (Cuturi 2013) is

.. math::
    \min_{P \ge 0,\; P\mathbf{1} = a,\; P^\top\mathbf{1} = b}
        \langle P, C \rangle - \varepsilon H(P),
    \qquad H(P) = -\sum_{ij} P_{ij} (\log P_{ij} - 1).

Its solution is :math:`P_{ij} = \exp((f_i + g_j - C_{ij})/\varepsilon)` and the dual
potentials are found by alternating exact block maximisation, written in the log
domain so that small :math:`\varepsilon` cannot underflow a kernel
:math:`e^{-C/\varepsilon}`:

.. math::
    f_i \leftarrow \varepsilon \log a_i - \varepsilon\,\mathrm{LSE}_j\big((g_j - C_{ij})/\varepsilon\big),
    \qquad
    g_j \leftarrow \varepsilon \log b_j - \varepsilon\,\mathrm{LSE}_i\big((f_i - C_{ij})/\varepsilon\big).

The unbalanced problem (``tau`` given) replaces both marginal constraints by
KL penalties of strength :math:`\tau`,

.. math::
    \min_{P \ge 0} \langle P, C \rangle - \varepsilon H(P)
        + \tau\,\mathrm{KL}(P\mathbf{1} \,\|\, a) + \tau\,\mathrm{KL}(P^\top\mathbf{1} \,\|\, b),

whose block updates are the balanced ones scaled by :math:`\tau/(\tau+\varepsilon)`
(Chizat, Peyré, Schmitzer, Vialard 2018, "Scaling algorithms for unbalanced
optimal transport problems"; Séjourné, Feydy, Vialard, Trouvé, Peyré 2019,
"Sinkhorn divergences for unbalanced optimal transport"). As
:math:`\tau \to \infty` the factor tends to 1 and the balanced plan is recovered.
This is POT's ``reg_type="entropy"`` (reference measure 1), not its default
``reg_type="kl"`` (reference measure :math:`a b^\top`); the two give the same plan
in the balanced case only.

Reference: M. Cuturi, "Sinkhorn Distances: Lightspeed Computation of Optimal
Transport", NeurIPS 2013. Used by OPTICAL (Z. Huang, P. Yu, J. Allan, "Improving
Cross-lingual Information Retrieval on Low-Resource Languages via Optimal
Transport Distillation", WSDM 2023, arXiv:2301.12566) to align the token
representations of a student and a teacher encoder, one small OT problem per
query/passage pair, inside the training loop.

Why hand-written rather than POT
--------------------------------
POT 0.9.7 is the oracle in the tests. Its batched solver
``ot.batch.solve_batch(M, reg, a, b, max_iter, tol, method="log_sinkhorn",
grad=...)`` does not fit a training loop:

* no masks: sequences of different lengths must be padded, and POT has no way to
  give padded tokens zero mass (``log 0`` gives ``-inf`` and NaN); here padding is
  masked rows/columns whose plan entries are exactly 0, and an all-padding
  element yields plan 0 and value 0;
* no unbalanced variant in the batched solver (only ``ot.solve`` /
  ``ot.unbalanced``, one problem at a time);
* its default gradient mode ``"envelope"`` still records the autograd graph of
  every iteration (only ``grad="detach"`` detaches the kernel) and then discards
  it; here ``grad="detach"`` runs the iterations under ``no_grad`` and attaches
  the envelope gradient :math:`\partial\,\mathrm{value}/\partial C = P` afterwards;
* its convergence check materialises the full plan every 10 iterations; here the
  row marginals come for free from the log-sum-exp the next update needs anyway;
* no mixed-precision handling (a bf16 cost would be iterated in bf16); here the
  cost is upcast to float32 with autocast disabled.

Example
-------
>>> import torch
>>> from optical.ot.sinkhorn import sinkhorn
>>> cost = torch.rand(4, 5, 7)
>>> mask_b = torch.ones(4, 7, dtype=torch.bool); mask_b[:, 5:] = False  # 2 pad tokens
>>> result = sinkhorn(cost, mask_b=mask_b, eps=0.05)
>>> result.plan.shape, bool((result.plan[:, :, 5:] == 0).all())
(torch.Size([4, 5, 7]), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from optical.errors import OpticalError

__all__ = ["OTResult", "sinkhorn"]

# Log-kernel fill for masked entries. Finite on purpose: -inf would turn
# "-inf - (-inf)" into NaN for an all-masked row. At this magnitude, adding any
# potential of a real entry (|f/eps| is at most ~1e6 for costs 1e3 and eps 1e-3)
# is absorbed by rounding, so exp() of a masked entry is exactly 0 and the
# potential of a masked row comes out as NEG - NEG = 0.
_MASKED_LOG = -1e30


@dataclass
class OTResult:
    """Result of :func:`sinkhorn`; tensors carry the batch dimension when the input did.

    plan: transport plan [B, n, m] (float32, or float64 for float64 input); masked entries are 0.
    value: ``<plan, cost>`` per element [B]; see :func:`sinkhorn` for its gradient.
    n_iter: Sinkhorn iterations run (the whole batch stops together).
    marginal_error: L1 distance of the plan's row and column sums to ``a`` and ``b`` [B].
        Balanced: the remaining constraint violation. Unbalanced: the mass the
        relaxation chose not to match, not an error of the solver.
    converged: [B] bool. Balanced: ``marginal_error < tol``. Unbalanced: the
        potentials moved less than ``tol`` (in cost units, sup norm) in the last
        checked iteration.
    """

    plan: Tensor
    value: Tensor
    n_iter: int
    marginal_error: Tensor
    converged: Tensor


def sinkhorn(
    cost: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    mask_a: Tensor | None = None,
    mask_b: Tensor | None = None,
    eps: float = 0.05,
    max_iter: int = 100,
    tol: float = 1e-5,
    tau: float | None = None,
    grad: Literal["detach", "autodiff"] = "detach",
    check_every: int = 5,
) -> OTResult:
    """Solve a batch of entropic OT problems in the log domain.

    Args:
        cost: [B, n, m] (or [n, m], then every output is unbatched). Any float
            dtype; iterated in float32 (float64 input stays float64).
        a, b: marginals [B, n] / [B, m]. None means uniform over the unmasked
            entries. Balanced: renormalised to sum 1 over the mask. Unbalanced:
            used as given (masked entries ignored). Zero-mass entries act as masked.
        mask_a, mask_b: bool [B, n] / [B, m], True = real entry, False = padding.
        eps: entropic regularisation strength (> 0).
        max_iter: maximum number of Sinkhorn iterations.
        tol: stop when, over the whole batch, the max L1 row-marginal error
            (balanced) or the max change of the potentials (unbalanced) is < tol.
            Checked every ``check_every`` iterations.
        tau: KL marginal relaxation strength; None (or inf) = balanced.
        grad: "detach": iterations run without graph, ``value = <P.detach(), C>``,
            so ``d value / d C = P``, which by the envelope theorem is the
            gradient of the entropic OT objective w.r.t. C. "autodiff": the
            iterations are differentiated (unrolled); plan and value carry the
            full graph.
        check_every: iterations between convergence checks (each check is a
            host sync on GPU).
    """
    if grad not in ("detach", "autodiff"):
        raise OpticalError(f"sinkhorn: grad={grad!r} is not supported; use 'detach' or 'autodiff'")
    if not eps > 0:
        raise OpticalError(f"sinkhorn: eps={eps} must be > 0")
    if max_iter < 1 or check_every < 1:
        raise OpticalError(f"sinkhorn: max_iter={max_iter} and check_every={check_every} must be >= 1")
    if tau is not None and not tau > 0:
        raise OpticalError(f"sinkhorn: tau={tau} must be > 0 (or None for balanced OT)")
    if tau is not None and math.isinf(tau):
        tau = None
    if cost.dim() not in (2, 3) or not cost.is_floating_point():
        raise OpticalError(f"sinkhorn: cost must be a float tensor [B, n, m] or [n, m], got {tuple(cost.shape)} {cost.dtype}")

    unbatched = cost.dim() == 2
    if unbatched:
        cost = cost.unsqueeze(0)
        a, b, mask_a, mask_b = (None if t is None else t.unsqueeze(0) for t in (a, b, mask_a, mask_b))
    batch, n, m = cost.shape
    _check_vector("a", a, (batch, n))
    _check_vector("b", b, (batch, m))
    _check_vector("mask_a", mask_a, (batch, n), boolean=True)
    _check_vector("mask_b", mask_b, (batch, m), boolean=True)

    work_dtype = torch.float64 if cost.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=cost.device.type, enabled=False):
        result = _solve(cost.to(work_dtype), a, b, mask_a, mask_b, eps, max_iter, tol, tau, grad, check_every)
    if unbatched:
        result = OTResult(
            plan=result.plan[0],
            value=result.value[0],
            n_iter=result.n_iter,
            marginal_error=result.marginal_error[0],
            converged=result.converged[0],
        )
    return result


def _check_vector(name: str, tensor: Tensor | None, shape: tuple[int, int], boolean: bool = False) -> None:
    if tensor is None:
        return
    if tuple(tensor.shape) != shape:
        raise OpticalError(f"sinkhorn: {name} has shape {tuple(tensor.shape)}, expected {shape} to match the cost")
    if boolean and tensor.dtype != torch.bool:
        raise OpticalError(f"sinkhorn: {name} must be a bool tensor (True = real entry), got {tensor.dtype}")


def _marginal(
    weights: Tensor | None, mask: Tensor | None, size: tuple[int, int], cost: Tensor, normalise: bool
) -> tuple[Tensor, Tensor]:
    """(marginal with zeros at invalid entries, validity mask) in the cost's dtype."""
    valid = torch.ones(size, dtype=torch.bool, device=cost.device) if mask is None else mask.to(cost.device)
    if weights is None:
        weights = valid.to(cost.dtype)
        return weights / weights.sum(-1, keepdim=True).clamp_min(1.0), valid
    weights = weights.detach().to(device=cost.device, dtype=cost.dtype)
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise OpticalError("sinkhorn: marginals must be finite and non-negative")
    valid = valid & (weights > 0)
    weights = weights.masked_fill(~valid, 0.0)
    if normalise:
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(torch.finfo(cost.dtype).tiny)
    return weights, valid


def _solve(
    cost: Tensor,
    a: Tensor | None,
    b: Tensor | None,
    mask_a: Tensor | None,
    mask_b: Tensor | None,
    eps: float,
    max_iter: int,
    tol: float,
    tau: float | None,
    grad: str,
    check_every: int,
) -> OTResult:
    batch, n, m = cost.shape
    balanced = tau is None
    a, valid_a = _marginal(a, mask_a, (batch, n), cost, normalise=balanced)
    b, valid_b = _marginal(b, mask_b, (batch, m), cost, normalise=balanced)
    # A problem with no real row or no real column transports nothing.
    nonempty = valid_a.any(-1, keepdim=True) & valid_b.any(-1, keepdim=True)
    valid_a = valid_a & nonempty
    valid_b = valid_b & nonempty
    a = a.masked_fill(~valid_a, 0.0)
    b = b.masked_fill(~valid_b, 0.0)
    valid = valid_a.unsqueeze(-1) & valid_b.unsqueeze(-2)
    has_padding = not bool(valid.all())
    if has_padding:
        # Padded costs may hold anything (even inf); they never enter the result.
        cost = cost.masked_fill(~valid, 0.0)
    if not bool(torch.isfinite(cost).all()):
        raise OpticalError("sinkhorn: cost has NaN/inf at unmasked entries; mask them or fix the cost")

    log_a = torch.log(a.masked_fill(~valid_a, 1.0)).masked_fill(~valid_a, _MASKED_LOG)
    log_b = torch.log(b.masked_fill(~valid_b, 1.0)).masked_fill(~valid_b, _MASKED_LOG)
    # Dual potentials are kept divided by eps (u = f/eps, v = g/eps) so the loop
    # never divides: u = log a - LSE_j(-C/eps + v).
    scale = 1.0 if balanced else tau / (tau + eps)

    differentiable = grad == "autodiff"
    with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
        source = cost if differentiable else cost.detach()
        log_kernel = source * (-1.0 / eps)
        if has_padding:
            log_kernel = log_kernel.masked_fill(~valid, _MASKED_LOG)
        u, v, n_iter, potential_change = _iterate(
            log_kernel, log_a, log_b, a, scale, eps, max_iter, tol, check_every, in_place=not differentiable
        )
        plan = torch.exp(log_kernel + u.unsqueeze(-1) + v.unsqueeze(-2))
        if has_padding:
            plan = plan.masked_fill(~valid, 0.0)

    with torch.no_grad():
        marginal_error = (plan.sum(-1) - a).abs().sum(-1) + (plan.sum(-2) - b).abs().sum(-1)
        converged = marginal_error < tol if balanced else potential_change < tol
    # detach mode: plan has no graph, so d value / d cost = plan (envelope theorem).
    value = (plan * cost).sum((-2, -1))
    return OTResult(plan=plan, value=value, n_iter=n_iter, marginal_error=marginal_error, converged=converged)


def _iterate(
    log_kernel: Tensor,
    log_a: Tensor,
    log_b: Tensor,
    a: Tensor,
    scale: float,
    eps: float,
    max_iter: int,
    tol: float,
    check_every: int,
    in_place: bool,
) -> tuple[Tensor, Tensor, int, Tensor]:
    """Run the log-domain updates.

    Returns (u, v, iterations run, sup-norm change of the potentials f = eps*u,
    g = eps*v over the last checked iteration [B]; only measured when unbalanced).
    """
    batch = log_kernel.shape[0]
    u = torch.zeros_like(log_a)
    v = torch.zeros_like(log_b)
    row_lse = torch.empty_like(log_a)
    col_lse = torch.empty_like(log_b)
    # Both reductions run over the last (contiguous) axis: keep a transposed copy.
    log_kernel_t = log_kernel.transpose(-1, -2).contiguous()
    buffer_rows = torch.empty_like(log_kernel) if in_place else None
    buffer_cols = torch.empty_like(log_kernel_t) if in_place else None
    balanced = scale == 1.0
    potential_change = torch.full((batch,), float("inf"), dtype=log_kernel.dtype, device=log_kernel.device)
    n_iter = 0
    for iteration in range(max_iter):
        check = (iteration + 1) % check_every == 0 or iteration == max_iter - 1
        row_lse = _lse_last(log_kernel, v.unsqueeze(-2), buffer_rows, row_lse if in_place else None)
        if balanced and check and iteration > 0:
            # Row sums of the current plan exp(K + u + v) are exp(u + row_lse):
            # the convergence test costs no extra pass over the [B, n, m] kernel.
            with torch.no_grad():
                row_error = (torch.exp(u + row_lse) - a).abs().sum(-1)
            if float(row_error.max()) < tol:
                break
        if not balanced and check:
            u_before, v_before = u.detach().clone(), v.detach().clone()
        u = _update(log_a, row_lse, scale, u if in_place else None)
        col_lse = _lse_last(log_kernel_t, u.unsqueeze(-2), buffer_cols, col_lse if in_place else None)
        v = _update(log_b, col_lse, scale, v if in_place else None)
        n_iter = iteration + 1
        if not balanced and check:
            with torch.no_grad():
                potential_change = eps * torch.maximum(
                    (u.detach() - u_before).abs().amax(-1), (v.detach() - v_before).abs().amax(-1)
                )
            if float(potential_change.max()) < tol:
                break
    return u, v, n_iter, potential_change


def _lse_last(matrix: Tensor, shift: Tensor, buffer: Tensor | None, out: Tensor | None) -> Tensor:
    """LSE over the last axis of matrix + shift, reusing buffers when not differentiating."""
    if buffer is None:
        return torch.logsumexp(matrix + shift, dim=-1)
    torch.add(matrix, shift, out=buffer)
    return torch.logsumexp(buffer, dim=-1, out=out)


def _update(log_marginal: Tensor, lse: Tensor, scale: float, out: Tensor | None) -> Tensor:
    if out is None:
        updated = log_marginal - lse
        return updated if scale == 1.0 else updated * scale
    torch.sub(log_marginal, lse, out=out)
    if scale != 1.0:
        out.mul_(scale)
    return out
