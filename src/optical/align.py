"""What the OT loss does, as a picture: the entropic transport plan between a student's foreign tokens and
the teacher's English tokens for one sentence pair.

OPTICAL (Huang, Yu & Allan, WSDM 2023, arXiv:2301.12566) distils with ``<P*, C>``, where ``P*`` is the
entropic OT plan (Cuturi, NeurIPS 2013) between the two token sets: a soft word alignment found without
supervision. :func:`align` computes that plan with the package's own Sinkhorn (:func:`optical.ot.sinkhorn`)
and the loss's own cost (:meth:`optical.losses.ot.OTLoss.cost_matrix`, centring included), for one or
more students on the same pair, so that zero-shot, MSE and OT students can be seen side by side.

The options are those of the first OT run among the students (its ``--loss-opt ot.*`` and
``--center-costs``), else the loss's defaults. A run's centre is the teacher's mean content token over
that run's bitext (read from the teacher cache, encoded once when absent), as in training. IDF marginals
need the run's IDF tables; the picture uses uniform ones then, and says so.

Example::

    from optical.align import align, plot_alignments
    panels = align("Ο σκύλος τρέχει.", "The dog runs.", students=["zero-shot", "runs/el-ot"])
    print(panels[1].text())
    plot_alignments(panels, "dog.png")
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch

from optical.errors import OpticalError
from optical.eval.results import ZERO_SHOT
from optical.losses.ot import OTLoss
from optical.models.encoder import Encoder
from optical.ot import sinkhorn

DEFAULT_TEACHER = "multilingual-e5-small"
#: Token length of both sentences when no run says otherwise (distill's default --max-length).
DEFAULT_MAX_LENGTH = 64
FIGURE_SUFFIXES = (".png", ".svg")


class CenterMode(StrEnum):
    """The centre subtracted inside the cost: the OT run's choice, none, or the mean of the sentences' English tokens."""

    AUTO = "auto"
    NONE = "none"
    SENTENCES = "sentences"


@dataclass(frozen=True)
class AlignOptions:
    """The OT problem's settings (the loss's options; ``marginals`` uniform or norm)."""

    eps: float = 0.05
    cost: str = "cosine"
    marginals: str = "uniform"
    tau: float | None = None
    max_iter: int = 100
    tol: float = 1e-5
    center: CenterMode = CenterMode.AUTO
    max_length: int = DEFAULT_MAX_LENGTH


@dataclass(frozen=True)
class Link:
    english: str
    share: float  # of the foreign token's mass


@dataclass(frozen=True)
class Alignment:
    """The plan of one student on one pair: ``plan[i, j]`` is the mass foreign token i sends to English token j."""

    student: str
    foreign_tokens: list[str]
    english_tokens: list[str]
    plan: np.ndarray  # [n, m], sums to 1 (balanced)
    cost: np.ndarray  # [n, m]
    value: float  # <plan, cost>: the OT loss of this pair
    center: str  # what was subtracted before the cost

    def top_links(self, k: int = 3) -> list[tuple[str, list[Link]]]:
        """Each foreign token with its ``k`` English tokens of most mass, as shares of the token's mass."""
        rows = self.plan / np.maximum(self.plan.sum(1, keepdims=True), 1e-12)
        out = []
        for token, row in zip(self.foreign_tokens, rows):
            best = np.argsort(-row, kind="stable")[:k]
            out.append((token, [Link(self.english_tokens[j], float(row[j])) for j in best]))
        return out

    def text(self, k: int = 3) -> str:
        lines = [f"{self.student}: <P, C> = {self.value:.4f} (centre: {self.center})"]
        width = max((len(token) for token in self.foreign_tokens), default=0)
        for token, links in self.top_links(k):
            targets = ", ".join(f"{link.english} {link.share:.2f}" for link in links)
            lines.append(f"  {token:<{width}} -> {targets}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "student": self.student,
            "foreign_tokens": self.foreign_tokens,
            "english_tokens": self.english_tokens,
            "plan": self.plan.round(6).tolist(),
            "value": self.value,
            "center": self.center,
        }


@dataclass(frozen=True)
class Centre:
    vector: torch.Tensor | None
    described: str


def content_tokens(encoder: Encoder, text: str, max_length: int) -> tuple[list[str], torch.Tensor]:
    """The content tokens of ``text`` (as the loss sees them: ``query`` prefix, no special tokens) and their vectors."""
    batch = encoder.tokenize([text], kind="query", max_length=max_length)
    with torch.inference_mode():
        out = encoder.forward(batch)
    mask = out.content_mask[0]
    ids = batch["input_ids"][0][mask].tolist()
    if not ids:
        raise OpticalError(f"{text!r} has no content tokens; give a sentence with words in it")
    return encoder.tokenizer.convert_ids_to_tokens(ids), out.embeddings[0][mask].float().cpu()


def plan_of(student_vectors: torch.Tensor, teacher_vectors: torch.Tensor, options: AlignOptions, centre: Centre) -> tuple:
    """(plan, cost, value) of the OT loss's problem for one pair."""
    loss = OTLoss(
        eps=options.eps, cost=options.cost, marginals="uniform", tau=options.tau, max_iter=options.max_iter, tol=options.tol
    )
    loss.center = centre.vector
    cost = loss.cost_matrix(student_vectors[None], teacher_vectors[None])[0]
    a = b = None
    if options.marginals == "norm":
        a, b = (v.norm(dim=-1) / v.norm(dim=-1).sum() for v in (student_vectors, teacher_vectors))
    result = sinkhorn(cost, a, b, eps=options.eps, max_iter=options.max_iter, tol=options.tol, tau=options.tau)
    return result.plan.numpy(), cost.numpy(), float(result.value)


def align_with(
    student: Encoder, teacher: Encoder, foreign: str, english: str, options: AlignOptions, centre: Centre, label: str
) -> Alignment:
    """The alignment of one pair with encoders already loaded (the web page keeps them)."""
    foreign_tokens, s = content_tokens(student, foreign, options.max_length)
    english_tokens, t = content_tokens(teacher, english, options.max_length)
    if options.center is CenterMode.SENTENCES:
        centre = Centre(t.mean(0), "mean of the English sentence's tokens")
    plan, cost, value = plan_of(s, t, options, centre)
    return Alignment(label, foreign_tokens, english_tokens, plan, cost, value, centre.described)


# ------------------------------------------------------------------ students and their options
@dataclass(frozen=True)
class Student:
    label: str
    path: str  # the model dir (zero-shot: the teacher's)
    record: object | None  # RunRecord, None for zero-shot


def load_students(students: list[str]) -> tuple[list[Student], str]:
    """The students (checked run dirs or zero-shot) and their common teacher."""
    from optical.train.record import RunRecord

    if not students:
        raise OpticalError("no --student given: pass zero-shot and/or output dirs of `optical distill`")
    found, teachers = [], set()
    for name in students:
        if name == ZERO_SHOT:
            found.append(Student(ZERO_SHOT, "", None))
            continue
        if not Path(name).is_dir():
            raise OpticalError(f"--student {name}: no such directory; pass the output dir of a finished `optical distill` run")
        record = RunRecord.load(name)
        record.verify_student()
        teachers.add(record.teacher)
        label = f"{record.config.method}-s{record.config.seed} ({Path(name).name})"
        found.append(Student(label, str(record.student_dir), record))
    if len(teachers) > 1:
        raise OpticalError(
            f"the students were distilled from different teachers ({', '.join(sorted(teachers))}); align one at a time"
        )
    return found, teachers.pop() if teachers else DEFAULT_TEACHER


def run_options(students: list[Student], center: CenterMode, overrides: dict) -> tuple[AlignOptions, Student | None]:
    """The first OT run's loss options (else the defaults), then ``overrides``; and that run."""
    ot_run = next((s for s in students if s.record is not None and s.record.config.method_spec.uses("ot")), None)
    values: dict = {}
    if ot_run is not None:
        config = ot_run.record.config
        values = {**config.loss_options.get("ot", {}), "max_length": config.max_length}
    elif students[0].record is not None:
        values = {"max_length": students[0].record.config.max_length}
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {"eps", "cost", "marginals", "tau", "max_iter", "tol", "max_length"}
    options = AlignOptions(center=center, **{k: v for k, v in values.items() if k in known})
    OTLoss.check_options({k: getattr(options, k) for k in ("eps", "cost", "marginals", "tau", "max_iter", "tol")})
    return options, ot_run


def run_centre(options: AlignOptions, ot_run: Student | None, teacher: Encoder) -> Centre:
    """The centre of ``options.center`` auto: the OT run's bitext mean when it trained centred, else none."""
    if options.center is not CenterMode.AUTO or ot_run is None or not ot_run.record.config.center_costs:
        return Centre(None, "none")
    from optical.data import build_bitext, resolve_data_dir
    from optical.train.teacher_cache import load_or_build_teacher_cache

    config = ot_run.record.config
    bitext = build_bitext(resolve_data_dir(config.data_dir), config.bitext_config())
    english = [pair.en for pair in bitext.pairs]
    cache = load_or_build_teacher_cache(teacher, english, config.max_length, progress=False)
    return Centre(cache.mean_token().float(), f"teacher mean token over the run's {len(english)} bitext pairs")


def align(foreign: str, english: str, students: list[str], **settings) -> list[Alignment]:
    """The OT plan of each student on one pair; ``settings`` as :func:`align_pairs`."""
    return align_pairs([(foreign, english)], students, **settings)[0]


def align_pairs(
    pairs: list[tuple[str, str]],
    students: list[str],
    center: CenterMode | str = CenterMode.AUTO,
    device: str = "cpu",
    teacher: str | None = None,
    **overrides,
) -> list[list[Alignment]]:
    """Per (foreign, English) pair, the OT plan of each student (``overrides``: ``eps``, ``cost``, ``marginals``,
    ``tau``, ``max_iter``, ``tol``, ``max_length``; None keeps the run's value). The models load once."""
    from optical.models import resolve_model
    from optical.models.check import check_model_dir

    for foreign, english in pairs:
        for side, text in (("foreign", foreign), ("English", english)):
            if not text.strip():
                raise OpticalError(f"the {side} sentence is empty; give both sides of the pair")
    try:
        center = CenterMode(center)
    except ValueError:
        raise OpticalError(f"--center {center!r} is not one of {', '.join(CenterMode)}") from None
    loaded, run_teacher = load_students(list(students))
    teacher_location = check_model_dir(resolve_model(teacher or run_teacher), role="--teacher")
    options, ot_run = run_options(loaded, center, overrides)
    teacher_encoder = Encoder.load(teacher_location, device=device).eval()
    centre = run_centre(options, ot_run, teacher_encoder)
    if options.marginals == "idf":
        options = dataclasses.replace(options, marginals="uniform")
        centre = Centre(centre.vector, centre.described + "; uniform marginals (idf needs the run's tables)")
    encoders = [teacher_encoder if s.record is None else Encoder.load(s.path, device=device).eval() for s in loaded]
    return [
        [align_with(encoder, teacher_encoder, foreign, english, options, centre, s.label) for s, encoder in zip(loaded, encoders)]
        for foreign, english in pairs
    ]


def read_pairs(path: str | Path, lines: list[int]) -> list[tuple[str, str]]:
    """(foreign, English) of the given 1-based lines of an ``English<TAB>foreign`` bitext file."""
    path = Path(path)
    if not path.is_file():
        raise OpticalError(f"--bitext {path}: no such file; give an English<TAB>foreign file")
    rows = path.read_text(encoding="utf-8-sig").splitlines()
    pairs = []
    for number in lines:
        if not 1 <= number <= len(rows):
            raise OpticalError(f"--lines {number}: {path} has lines 1 to {len(rows)}")
        fields = rows[number - 1].split("\t")
        if len(fields) != 2 or not all(field.strip() for field in fields):
            raise OpticalError(f"{path}:{number}: expected English<TAB>foreign, found {len(fields)} tab-separated fields")
        pairs.append((fields[1].strip(), fields[0].strip()))
    return pairs


# ------------------------------------------------------------------ the figure
def plot_alignments(panels: list[Alignment], path: str | Path) -> Path:
    """The plans side by side as heatmaps (rows: foreign tokens; columns: English tokens), PNG or SVG by suffix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from optical.storage import atomic_path

    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise OpticalError(f"--figure {path}: give a .png or .svg file name")
    rows, cols = max(len(p.foreign_tokens) for p in panels), max(len(p.english_tokens) for p in panels)
    width, height = max(3.0, 0.35 * cols + 1.5), max(2.5, 0.3 * rows + 1.5)
    figure, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), height), squeeze=False)
    for axis, panel in zip(axes[0], panels):
        shares = panel.plan / np.maximum(panel.plan.sum(1, keepdims=True), 1e-12)
        image = axis.imshow(shares, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        axis.set_xticks(range(len(panel.english_tokens)), panel.english_tokens, rotation=90, fontsize=8)
        axis.set_yticks(range(len(panel.foreign_tokens)), panel.foreign_tokens, fontsize=8)
        axis.set_title(f"{panel.student}\n<P, C> = {panel.value:.3f}", fontsize=9)
    figure.colorbar(image, ax=axes[0].tolist(), label="share of the foreign token's mass")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lower()[1:], bbox_inches="tight")
    plt.close(figure)
    return path
