"""OPTICAL: token-level optimal-transport distillation.

Huang, Yu & Allan, "Improving Cross-lingual Information Retrieval on
Low-Resource Languages via Optimal Transport Distillation", WSDM 2023
(arXiv:2301.12566).

For a bitext pair (e, x) the frozen teacher gives content-token embeddings
t_1..t_m of the English sentence e and the student gives s_1..s_n of the
foreign sentence x. With a cost matrix C_ij = d(s_i, t_j) and token masses a
(student side) and b (teacher side), the entropic transport plan is

    P* = argmin_{P 1 = a, P^T 1 = b, P >= 0}  <P, C> - eps * H(P)

and the loss is the Frobenius inner product

    L(e, x) = <P*, C> = sum_ij P*_ij C_ij,

averaged over the batch. The plan is a soft word alignment found without any
alignment supervision; the gradient reaches the student only through C (the
plan is held fixed by default, which by the envelope theorem is the exact
gradient of the regularised OT value with respect to C).

Cost functions (on L2-normalised vectors, optionally after subtracting a
centre vector such as the teacher's mean token embedding, which counters the
anisotropy of contextual embeddings: Ethayarajh, EMNLP 2019):

* ``cosine``:      C_ij = 1 - cos(s_i, t_j)
* ``sqeuclidean``: C_ij = || s_i/|s_i| - t_j/|t_j| ||^2 = 2 - 2 cos(s_i, t_j)

Marginals: ``uniform`` over content tokens; ``norm`` proportional to each
token's embedding norm; ``idf`` proportional to each token's inverse document
frequency in the bitext (tables given by the caller). With ``tau`` set, the
marginal constraints are relaxed by KL penalties of strength tau (unbalanced
OT), so tokens without a counterpart need not be transported.

Options (``--loss-opt ot.NAME=VALUE``): see ``OTLoss.OPTIONS``, e.g.
``ot.eps=0.05``, ``ot.cost=sqeuclidean``, ``ot.marginals=idf``, ``ot.tau=1.0``.

Example:
    >>> from optical.losses import DistillBatch
    >>> batch = DistillBatch.random(seed=0)   # student(x) and teacher(e) token embeddings
    >>> out = OTLoss(eps=0.05, cost="cosine")(batch)
    >>> out.loss.shape, sorted(out.logs)
    (torch.Size([]), ['ot', 'ot_cost_mean', 'ot_iters', 'ot_plan_sharpness'])
    >>> bool(0.0 <= out.loss <= 2.0)          # a cosine cost lies in [0, 2]
    True
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from optical.errors import OpticalError
from optical.losses.base import DistillBatch, DistillLoss, LossOption, LossOutput, at_least_one, finite_non_negative, positive
from optical.ot import sinkhorn

COSTS = ("cosine", "sqeuclidean")
MARGINALS = ("uniform", "norm", "idf")
GRADS = ("detach", "autodiff")


def _masses(
    embeddings: torch.Tensor,
    mask: torch.Tensor,
    kind: str,
    token_ids: torch.Tensor | None,
    idf: torch.Tensor | None,
) -> torch.Tensor | None:
    """Token masses for one side; ``None`` means uniform over the mask."""
    if kind == "uniform":
        return None
    if kind == "norm":
        weights = embeddings.detach().float().norm(dim=-1)
    else:  # idf
        if token_ids is None or idf is None:
            raise OpticalError("OT marginals 'idf' need token ids and IDF tables; build the loss through optical.train")
        weights = idf.to(token_ids.device)[token_ids.clamp(max=idf.numel() - 1)]
    weights = weights * mask
    return weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)


class OTLoss(DistillLoss):
    """OPTICAL loss <P*, C> between student foreign tokens and teacher English tokens."""

    name = "ot"

    OPTIONS = (
        LossOption("eps", float, 0.05, "entropic regularisation strength of the plan", check=positive, constraint="> 0, finite"),
        LossOption("cost", str, "cosine", "token cost: 1 - cos, or the squared distance of unit vectors", choices=COSTS),
        LossOption("marginals", str, "uniform", "token masses: uniform, by embedding norm, or by bitext IDF", choices=MARGINALS),
        LossOption(
            "tau",
            float,
            None,
            "KL relaxation of the marginals (unbalanced OT); null: balanced",
            check=positive,
            constraint="> 0, finite",
        ),
        LossOption("max_iter", int, 100, "Sinkhorn iterations at most", check=at_least_one, constraint=">= 1"),
        LossOption(
            "tol",
            float,
            1e-5,
            "Sinkhorn stops once the marginal error is below this (0: exactly max_iter iterations, no host sync)",
            check=finite_non_negative,
            constraint=">= 0, finite",
        ),
        LossOption(
            "grad", str, "detach", "plan held fixed in the gradient (envelope theorem) or differentiated through", choices=GRADS
        ),
    )

    def __init__(
        self,
        eps: float = 0.05,
        cost: Literal["cosine", "sqeuclidean"] = "cosine",
        marginals: Literal["uniform", "norm", "idf"] = "uniform",
        tau: float | None = None,
        max_iter: int = 100,
        tol: float = 1e-5,
        grad: Literal["detach", "autodiff"] = "detach",
        center: torch.Tensor | None = None,
        student_idf: torch.Tensor | None = None,
        teacher_idf: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        options = self.check_options(
            {"eps": eps, "cost": cost, "marginals": marginals, "tau": tau, "max_iter": max_iter, "tol": tol, "grad": grad}
        )
        self.eps, self.cost, self.marginals, self.tau = options["eps"], options["cost"], options["marginals"], options["tau"]
        self.max_iter, self.tol, self.grad = options["max_iter"], options["tol"], options["grad"]
        # Buffers so that .to(device) moves them; None when unused. Set by the trainer, not by users.
        self.register_buffer("center", center, persistent=False)
        self.register_buffer("student_idf", student_idf, persistent=False)
        self.register_buffer("teacher_idf", teacher_idf, persistent=False)

    def cost_matrix(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """``[B, n, m]`` cost between student tokens ``[B,n,H]`` and teacher tokens ``[B,m,H]``."""
        student, teacher = student.float(), teacher.float()
        if self.center is not None:
            student = student - self.center
            teacher = teacher - self.center
        cos = torch.bmm(F.normalize(student, dim=-1), F.normalize(teacher, dim=-1).transpose(1, 2))
        return 1.0 - cos if self.cost == "cosine" else 2.0 - 2.0 * cos

    def forward(self, batch: DistillBatch) -> LossOutput:
        # The cost and the Sinkhorn solve stay float32 under mixed precision (autocast would run the bmm in bf16).
        with torch.autocast(batch.student_foreign.embeddings.device.type, enabled=False):
            return self._forward(batch)

    def _forward(self, batch: DistillBatch) -> LossOutput:
        student, teacher = batch.student_foreign, batch.teacher_english
        cost = self.cost_matrix(student.embeddings, teacher.embeddings)
        a = _masses(student.embeddings, student.content_mask, self.marginals, batch.student_token_ids, self.student_idf)
        b = _masses(teacher.embeddings, teacher.content_mask, self.marginals, batch.teacher_token_ids, self.teacher_idf)
        solver = {name: getattr(self, name) for name in ("eps", "max_iter", "tol", "tau", "grad")}
        result = sinkhorn(cost, a, b, mask_a=student.content_mask, mask_b=teacher.content_mask, **solver)
        loss = result.value.mean()
        plan = result.plan.detach()
        # Plan sharpness: mass on each student token's best teacher token, relative to its row mass.
        row_mass = plan.sum(-1).clamp_min(1e-12)
        # Masked means as sums (no boolean indexing, which would wait for the device).
        rows = student.content_mask.to(plan.dtype)
        sharpness = ((plan.amax(-1) / row_mass) * rows).sum() / rows.sum().clamp_min(1.0)
        pairs = (student.content_mask[:, :, None] & teacher.content_mask[:, None, :]).to(cost.dtype)
        return LossOutput(
            loss,
            {
                "ot": loss.detach(),
                "ot_iters": float(result.n_iter),
                "ot_plan_sharpness": sharpness,
                "ot_cost_mean": (cost.detach() * pairs).sum() / pairs.sum().clamp_min(1.0),
            },
        )
