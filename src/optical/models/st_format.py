"""Reading and writing the sentence-transformers side files of a model directory.

A Hugging Face encoder directory becomes a sentence-transformers model with a handful of
small JSON files: ``modules.json`` (the module pipeline), ``1_Pooling/config.json``,
``config_sentence_transformers.json`` (named prompts such as E5's "query: ") and
``sentence_bert_config.json`` (max length). The files are written in the long-standing layout
(``sentence_transformers.models.*`` type names, legacy pooling keys) that every
sentence-transformers release from 2.x on reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from optical.errors import OpticalError

POOLING_MODES = ("mean", "cls")
DENSE_DIR = "2_Dense"
IDENTITY_ACTIVATION = "torch.nn.modules.linear.Identity"


@dataclass
class SentenceTransformersConfig:
    """What the side files say about encoding; ``None`` where a file is absent."""

    pooling: str | None = None
    query_prefix: str | None = None
    passage_prefix: str | None = None
    max_seq_length: int | None = None
    dense_dir: Path | None = None


def write_sentence_transformers_files(
    model_dir: Path,
    *,
    hidden_size: int,
    pooling: str,
    query_prefix: str = "",
    passage_prefix: str = "",
    max_seq_length: int = 512,
    projection: torch.nn.Linear | None = None,
) -> None:
    """Write the side files into ``model_dir`` (a directory still being built, not yet published).

    A projection becomes a ``Dense`` module with identity activation after pooling; since mean
    and CLS pooling commute with an affine map, sentence-transformers' Pooling -> Dense equals
    our per-token projection followed by pooling.
    """
    if pooling not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {POOLING_MODES}, not {pooling!r}")
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    pooling_config = {
        "word_embedding_dimension": hidden_size,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "include_prompt": True,  # E5 pools over its "query: " prefix too
    }
    _write_json(model_dir / "1_Pooling" / "config.json", pooling_config)
    if projection is not None:
        modules.append({"idx": 2, "name": "2", "path": DENSE_DIR, "type": "sentence_transformers.models.Dense"})
        dense_dir = model_dir / DENSE_DIR
        _write_json(
            dense_dir / "config.json",
            {
                "in_features": projection.in_features,
                "out_features": projection.out_features,
                "bias": projection.bias is not None,
                "activation_function": IDENTITY_ACTIVATION,
            },
        )
        weights = {"linear.weight": projection.weight.detach().float().cpu().contiguous()}
        if projection.bias is not None:
            weights["linear.bias"] = projection.bias.detach().float().cpu().contiguous()
        save_file(weights, str(dense_dir / "model.safetensors"))
    normalize_index = len(modules)
    modules.append(
        {
            "idx": normalize_index,
            "name": str(normalize_index),
            "path": f"{normalize_index}_Normalize",
            "type": "sentence_transformers.models.Normalize",
        }
    )
    (model_dir / f"{normalize_index}_Normalize").mkdir(parents=True, exist_ok=True)
    _write_json(model_dir / "modules.json", modules)
    prompts = {name: text for name, text in (("query", query_prefix), ("passage", passage_prefix)) if text}
    _write_json(
        model_dir / "config_sentence_transformers.json",
        {"prompts": prompts, "default_prompt_name": None, "similarity_fn_name": "cosine"},
    )
    _write_json(model_dir / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})


def read_sentence_transformers_config(model_dir: Path) -> SentenceTransformersConfig:
    """Read the side files of a local model directory (missing files leave fields ``None``)."""
    config = SentenceTransformersConfig()
    modules_path = model_dir / "modules.json"
    if not modules_path.is_file():
        return config
    modules = json.loads(modules_path.read_text(encoding="utf-8"))
    for module in modules:
        kind = module.get("type", "").rsplit(".", 1)[-1]
        path = model_dir / module.get("path", "")
        if kind == "Pooling" and (path / "config.json").is_file():
            pooling = json.loads((path / "config.json").read_text(encoding="utf-8"))
            mode = pooling.get("pooling_mode")
            if mode is None:
                mode = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
            config.pooling = mode if isinstance(mode, str) else mode[0]
        elif kind == "Dense":
            config.dense_dir = path
    st_config_path = model_dir / "config_sentence_transformers.json"
    if st_config_path.is_file():
        prompts = json.loads(st_config_path.read_text(encoding="utf-8")).get("prompts") or {}
        config.query_prefix = prompts.get("query")
        config.passage_prefix = prompts.get("passage", prompts.get("document"))
    bert_config_path = model_dir / "sentence_bert_config.json"
    if bert_config_path.is_file():
        config.max_seq_length = json.loads(bert_config_path.read_text(encoding="utf-8")).get("max_seq_length")
    return config


def load_dense_projection(dense_dir: Path) -> torch.nn.Linear:
    """A sentence-transformers ``Dense`` module (identity activation only) as ``torch.nn.Linear``."""
    config = json.loads((dense_dir / "config.json").read_text(encoding="utf-8"))
    activation = config.get("activation_function", IDENTITY_ACTIVATION)
    if activation != IDENTITY_ACTIVATION:
        raise OpticalError(
            f"{dense_dir}/config.json: Dense activation {activation} is not a linear projection; "
            "load this model with sentence-transformers instead"
        )
    linear = torch.nn.Linear(config["in_features"], config["out_features"], bias=config.get("bias", True))
    linear.load_state_dict(
        {key.removeprefix("linear."): value for key, value in load_file(str(dense_dir / "model.safetensors")).items()}
    )
    return linear


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
