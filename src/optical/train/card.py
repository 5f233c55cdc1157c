"""The model card of a distilled student: ``student/README.md``, the sentence-transformers convention.

A YAML front matter (the Hugging Face model-card metadata: ``language``, ``license``,
``base_model``, ``library_name``, ``pipeline_tag``, ``tags``, ``datasets``) plus an
``optical`` block with what made the student (method and its options, teacher, seed,
bitext sources with licences and pair counts, the selection criterion) and, once
evaluated, its scores with 95% bootstrap confidence intervals; then a readable body
with the same facts and how to load the model with sentence-transformers and
transformers.

``optical distill`` writes the card when a run finishes (after ``run.json``, so the
card is not among the recorded student files: updating it never makes a finished
student look changed); ``optical evaluate`` adds or replaces its scores (one entry per
evaluation system, split and task); ``optical model card RUN`` (re)writes it for a run
made before cards existed. The scores live in the front matter and are read back from
it, so the card is the only place they are kept.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from optical.errors import OpticalError
from optical.storage import atomic_write_text
from optical.train.record import RunRecord

CARD = "README.md"
_FENCE = "---"


@dataclass(frozen=True)
class CardScore:
    """One evaluation's headline measure on one task, with its 95% bootstrap CI over the queries."""

    system: str
    split: str
    task: str  # task key, e.g. clir_sentence.el
    measure: str  # e.g. RR@10
    value: float
    ci_low: float
    ci_high: float
    n_queries: int

    @property
    def key(self) -> tuple[str, str, str]:
        return self.system, self.split, self.task


def _base_model(name: str) -> tuple[str, str | None]:
    """(hub name or path, licence) of a default model name or a model dir."""
    from optical.models.registry import default_model_for

    model = default_model_for(name)
    return (model.hub_name, model.license) if model is not None else (str(name), None)


def _bitext(record: RunRecord) -> list[dict[str, Any]]:
    from optical.data.sources import SOURCES

    found = []
    for name, stats in record.bitext.stats.get("per_source", {}).items():
        source = SOURCES.get(name)
        found.append(
            {
                "source": name,
                "license": source.license if source else "user-supplied",
                "license_class": stats.get("license_class", source.license_class if source else "user"),
                "pairs": stats.get("selected"),
            }
        )
    return found


def card_metadata(record: RunRecord, scores: list[CardScore]) -> dict[str, Any]:
    """The front matter of the card of ``record``."""
    config = record.config
    base, licence = _base_model(config.student or config.teacher)
    teacher, _ = _base_model(record.teacher)
    selection = config.select_on
    options = {
        "loss_options": config.loss_options,
        "center_costs": config.center_costs,
        "projection": config.projection,
        "freeze_embeddings": config.freeze_embeddings,
        "budget": config.budget,
        "noise": config.noise,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "max_length": config.max_length,
    }
    metadata: dict[str, Any] = {
        "language": [config.lang, "en"],
        **({"license": licence.lower()} if licence else {}),
        "library_name": "sentence-transformers",
        "pipeline_tag": "sentence-similarity",
        "base_model": base,
        "tags": ["sentence-transformers", "cross-lingual-retrieval", "knowledge-distillation", f"optical-{config.method}"],
        "datasets": [item["source"] for item in _bitext(record)],
        "optical": {
            "method": config.method,
            "teacher": teacher,
            "seed": config.seed,
            "options": options,
            "bitext": _bitext(record),
            "pairs": record.bitext.pairs,
            "selection": {
                "criterion": "none (the last step)" if selection == "none" else record.result.selection_metric,
                "best_step": record.result.best_step,
                "best_metric": record.result.best_metric,
                "steps": record.result.steps,
            },
            "fingerprint": record.fingerprint,
            "scores": [asdict(score) for score in sorted(scores, key=lambda s: s.key)],
        },
    }
    return json.loads(json.dumps(metadata))  # plain types only (YAML safe_dump refuses tuples and numpy floats)


def _body(metadata: dict[str, Any], prefix: str) -> str:
    """The readable part; ``prefix`` is what the model expects before a query (e5: ``query: ``)."""
    o = metadata["optical"]
    lang = metadata["language"][0]
    lines = [
        f"# {o['method']} student for {lang} → en retrieval",
        "",
        f"A query encoder for **{lang}** queries against **English** documents, distilled with `optical distill "
        f"--method {o['method']}` from the frozen teacher `{o['teacher']}` (the base model `{metadata['base_model']}`). "
        "Queries go through this model; documents through the teacher.",
        "",
        "## Training",
        "",
        f"- method: `{o['method']}`, seed {o['seed']}, options: `{json.dumps(o['options'], sort_keys=True)}`",
        f"- selection: {o['selection']['criterion']} (best step {o['selection']['best_step']} of {o['selection']['steps']})",
        f"- bitext: {o['pairs']} pairs",
    ]
    lines += [f"  - {b['source']}: {b['pairs']} pairs, {b['license']} ({b['license_class']})" for b in o["bitext"]]
    lines += ["", "## Scores", ""]
    if o["scores"]:
        lines += ["| system | split | task | measure | value | 95% CI | queries |", "|---|---|---|---|---|---|---|"]
        lines += [
            f"| {s['system']} | {s['split']} | {s['task']} | {s['measure']} | {s['value']:.4f} | "
            f"[{s['ci_low']:.4f}, {s['ci_high']:.4f}] | {s['n_queries']} |"
            for s in o["scores"]
        ]
    else:
        lines.append("Not evaluated yet: `optical evaluate --student RUN --out EVAL` adds the scores here.")
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        'model = SentenceTransformer("path/to/this/dir")',
        f'embeddings = model.encode(["{prefix}..."], normalize_embeddings=True)',
        "```",
        "",
        "With transformers alone (mean pooling over the attention mask, then L2 normalisation"
        + (f"; the model expects the prefix `{prefix}` before a query" if prefix else "")
        + "):",
        "",
        "```python",
        "import torch, torch.nn.functional as F",
        "from transformers import AutoModel, AutoTokenizer",
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/dir")',
        'model = AutoModel.from_pretrained("path/to/this/dir")',
        f'batch = tokenizer(["{prefix}..."], padding=True, truncation=True, return_tensors="pt")',
        "hidden = model(**batch).last_hidden_state",
        'mask = batch["attention_mask"].unsqueeze(-1).float()',
        "embeddings = F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)",
        "```",
        "",
        "Or search a collection from the command line: `optical search --student RUN --collection DIR QUERY`.",
        "",
    ]
    return "\n".join(lines)


def read_card(path: str | Path) -> dict[str, Any]:
    """The front matter of a card (an empty dict when the file or its front matter is missing)."""
    path = Path(path)
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    if not text.startswith(_FENCE + "\n"):
        return {}
    head, fence, _ = text[len(_FENCE) + 1 :].partition("\n" + _FENCE + "\n")
    if not fence:
        return {}
    try:
        held = yaml.safe_load(head)
    except yaml.YAMLError as exc:
        raise OpticalError(f"{path}: the front matter is not YAML ({exc.problem}); delete the card to rewrite it") from None
    return held if isinstance(held, dict) else {}


def _held_scores(path: Path) -> list[CardScore]:
    held = read_card(path).get("optical", {}).get("scores") or []
    try:
        return [CardScore(**entry) for entry in held]
    except TypeError:
        raise OpticalError(f"{path}: optical.scores is malformed; delete the card to rewrite it") from None


def write_model_card(run_dir: str | Path, scores: list[CardScore] | None = None) -> Path:
    """(Re)write ``student/README.md`` of a finished run, keeping the scores it holds; ``scores`` are added,
    replacing any of the same system, split and task. Its path."""
    record = RunRecord.load(run_dir)
    student = record.student_dir
    if not student.is_dir():
        raise OpticalError(f"{student} is missing: {run_dir} holds no student to describe")
    path = student / CARD
    merged = {score.key: score for score in _held_scores(path)}
    merged.update({score.key: score for score in scores or []})
    metadata = card_metadata(record, list(merged.values()))
    front = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True, width=120)
    from optical.models.st_format import read_sentence_transformers_config

    prefix = read_sentence_transformers_config(student).query_prefix or ""
    text = f"{_FENCE}\n{front}{_FENCE}\n\n{_body(metadata, prefix)}"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:  # a reused evaluation touches nothing
        atomic_write_text(path, text)
    return path
