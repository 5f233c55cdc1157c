"""How often two dev criteria pick the same checkpoint (issue 27, item 2).

Languages without XQuAD select on held-out alignment (``--select-on heldout_align``); where XQuAD exists each of
those runs also records XQuAD dev MRR@10 at every dev evaluation, never selecting on it. From one run's history,
both choices can be read: the step with the best held-out alignment (the kept one) and the step XQuAD dev would
have kept (the first best, as the trainer keeps the first on a tie). :func:`selection_agreement` compares them for
every run of a study that recorded both, and says what the alignment criterion costs on XQuAD dev: the XQuAD dev
score at its step against the best XQuAD dev score of the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from optical.errors import OpticalError
from optical.formatting import number
from optical.storage import atomic_write_json, atomic_write_text
from optical.study.layout import DISTILL_DIR, MANIFEST, RUN_JSON
from optical.study.manifest import read_manifest
from optical.train.record import RunRecord

HELDOUT = "heldout_align"
XQUAD_DEV = "xquad_dev_mrr@10"
AGREEMENT_JSON = "agreement.json"
AGREEMENT_MD = "agreement.md"


@dataclass(frozen=True)
class RunAgreement:
    """The step each criterion keeps in one run, and XQuAD dev at both."""

    run_id: str
    lang: str
    method: str
    seed: int
    evaluations: int
    heldout_step: int
    xquad_step: int
    xquad_at_heldout_step: float
    xquad_best: float

    @property
    def same_step(self) -> bool:
        return self.heldout_step == self.xquad_step

    @property
    def xquad_cost(self) -> float:
        """XQuAD dev lost by keeping the held-out alignment's step (0 where both agree, never negative)."""
        return self.xquad_best - self.xquad_at_heldout_step


@dataclass(frozen=True)
class AgreementReport:
    runs: tuple[RunAgreement, ...]

    @property
    def same(self) -> int:
        return sum(run.same_step for run in self.runs)

    def to_markdown(self) -> str:
        if not self.runs:
            return "No run recorded both held-out alignment and XQuAD dev.\n"
        costs = [run.xquad_cost for run in self.runs]
        lines = [
            f"Held-out alignment ({HELDOUT}) and XQuAD dev MRR@10 picked the same step in {self.same} of {len(self.runs)} "
            f"runs. Keeping the alignment's step cost {number(sum(costs) / len(costs))} XQuAD dev MRR@10 on average "
            f"(largest {number(max(costs))}).",
            "",
            "| lang | method | seed | dev evaluations | step (alignment) | step (XQuAD dev) | XQuAD dev there | best XQuAD dev |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for run in self.runs:
            lines.append(
                f"| {run.lang} | {run.method} | {run.seed} | {run.evaluations} | {run.heldout_step} | {run.xquad_step} "
                f"| {number(run.xquad_at_heldout_step)} | {number(run.xquad_best)} |"
            )
        return "\n".join(lines) + "\n"

    def save(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        payload = {"same_step": self.same, "runs": [asdict(run) for run in self.runs]}
        atomic_write_json(out / AGREEMENT_JSON, payload)
        atomic_write_text(out / AGREEMENT_MD, "# Selection criteria: held-out alignment vs XQuAD dev\n\n" + self.to_markdown())


def _first_best(history: list[dict], key: str) -> dict:
    best = history[0]
    for entry in history[1:]:
        if entry[key] > best[key]:
            best = entry
    return best


def run_agreement(run_id: str, entry: dict, record: RunRecord) -> RunAgreement | None:
    """Both criteria's steps in one run, or None when its history lacks either."""
    history = [h for h in record.result.history if HELDOUT in h and XQUAD_DEV in h]
    if not history:
        return None
    by_heldout, by_xquad = _first_best(history, HELDOUT), _first_best(history, XQUAD_DEV)
    return RunAgreement(
        run_id,
        entry["lang"],
        entry["method"],
        int(entry.get("seed") or 0),
        len(history),
        by_heldout["step"],
        by_xquad["step"],
        by_heldout[XQUAD_DEV],
        by_xquad[XQUAD_DEV],
    )


def _distill_record(study_dir: Path, entry: dict) -> RunRecord | None:
    """The run.json of a manifest entry, read only from inside the study dir."""
    relative = Path(entry["path"]) / DISTILL_DIR / RUN_JSON
    if relative.is_absolute() or ".." in relative.parts:
        raise OpticalError(
            f"{study_dir / MANIFEST}: run {entry['id']} names {entry['path']}, outside the study dir; restore it from git"
        )
    path = study_dir / relative
    return RunRecord.load(path) if path.is_file() else None


def selection_agreement(study_dir: str | Path) -> AgreementReport:
    """Every finished run of the study that recorded both criteria, compared (study order)."""
    study_dir = Path(study_dir)
    manifest = read_manifest(study_dir / MANIFEST)
    found = []
    for entry in manifest["runs"]:
        record = _distill_record(study_dir, entry) if entry["status"] == "done" else None
        compared = run_agreement(entry["id"], entry, record) if record is not None else None
        if compared is not None:
            found.append(compared)
    return AgreementReport(tuple(found))
