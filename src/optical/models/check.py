"""Cheap checks of a model directory, of saved weights and of a tiny model's shape, before anything loads them.

:func:`check_model_dir` reads only small files and the safetensors headers, so an empty,
half-copied or truncated model dir is refused in one line naming the file (instead of
transformers' chained exceptions, or its advice to install sentencepiece for a dir that
has no tokenizer at all). :func:`file_digests` / :func:`verify_digests` record and check the
size and sha256 of saved files (a finished run's student). No torch, no transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optical.errors import OpticalError
from optical.storage import path_in_record, sha256_file

#: Files from which transformers can build a (fast) tokenizer.
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
    "spm.model",
    "tokenizer.model",
    "vocab.json",
)
#: Weight files transformers loads, in the order it prefers them.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_MAX_HEADER = 100 * 1024 * 1024


#: Model dirs that passed :func:`check_model_dir` in this process, by real path and the size and mtime of
#: each file: a run, a study or an evaluation checks the same dirs again and again, and parsing a 17 MB
#: tokenizer.json costs about half a second each time. A changed file changes the key.
_PASSED: set[tuple] = set()


def _dir_signature(path: Path) -> tuple:
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file())
    return (str(path.resolve()), tuple(files))


def check_model_dir(path: str | Path, role: str = "model") -> Path:
    """Refuse a local model dir without a readable config, a tokenizer or intact weights.

    ``role`` names it in the message (``--teacher``, ``student``). Returns the path.
    """
    path = Path(path)
    if not path.exists():
        raise OpticalError(f"{role} {path}: no such model directory")
    if not path.is_dir():
        raise OpticalError(f"{role} {path} is a file, not a model directory")
    signature = _dir_signature(path)
    if signature in _PASSED:
        return path
    _check_files(path, role)
    _PASSED.add(signature)
    return path


def _check_files(path: Path, role: str) -> None:
    config = _read_json(path / "config.json", role, "a Hugging Face model dir needs it")
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise OpticalError(f"{role} {path / 'config.json'} has no model_type: not a Hugging Face model config")
    _refuse_custom_code(path, config, role)
    tokenizers = [name for name in TOKENIZER_FILES if (path / name).is_file()]
    if not tokenizers:
        raise OpticalError(f"{role} {path}: tokenizer.json is missing (no tokenizer files in the model dir)")
    if "tokenizer.json" in tokenizers:
        tokenizer = _read_json(path / "tokenizer.json", role, "")
        # What transformers' fast tokenizer indexes first; a file without them fails there with a bare KeyError.
        if not (isinstance(tokenizer, dict) and isinstance(tokenizer.get("model"), dict) and "added_tokens" in tokenizer):
            raise OpticalError(
                f"{role} {path / 'tokenizer.json'} is not a tokenizers file (no model or added_tokens); copy it again"
            )
    for name in ("tokenizer_config.json", "special_tokens_map.json", "modules.json", "sentence_bert_config.json"):
        if (path / name).exists():
            _read_json(path / name, role, "")
    weights = [name for name in WEIGHT_FILES if (path / name).is_file()]
    if not weights:
        raise OpticalError(f"{role} {path}: model.safetensors is missing (no weights in the model dir)")
    if weights[0] == "model.safetensors":
        check_safetensors(path / "model.safetensors", role)
    elif weights[0] == "model.safetensors.index.json":
        index = _read_json(path / weights[0], role, "")
        shards = sorted(set((index or {}).get("weight_map", {}).values())) if isinstance(index, dict) else []
        if not shards:
            raise OpticalError(f"{role} {path / weights[0]} names no weight files")
        for shard in shards:
            check_safetensors(path / shard, role)
    else:
        if (path / weights[0]).stat().st_size == 0:
            raise OpticalError(f"{role} {path / weights[0]} is empty")


def _refuse_custom_code(path: Path, config: dict, role: str) -> None:
    """Refuse a model dir that needs code of its own (``auto_map`` in its config or tokenizer config, which
    transformers would import from the dir's ``.py`` files): optical never runs code shipped with a model."""
    tokenizer_config = path / "tokenizer_config.json"
    for name, held in (("config.json", config), ("tokenizer_config.json", _optional_json(tokenizer_config, role))):
        if isinstance(held, dict) and "auto_map" in held:
            raise OpticalError(
                f"{role} {path / name} has auto_map: the model needs its own Python code, which optical never runs "
                "(trust_remote_code=False); use a model that transformers supports natively"
            )


def _optional_json(path: Path, role: str) -> Any:
    return _read_json(path, role, "") if path.is_file() else None


def check_tiny_shape(hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0, vocab_size: int = 1000) -> None:
    """Refuse a tiny-model shape that BERT cannot build, with one line naming the value (BertConfig itself
    would only fail later, inside the attention layer's constructor)."""
    for name, value in (("hidden", hidden), ("layers", layers), ("heads", heads), ("vocab_size", vocab_size)):
        if value < 1:
            raise OpticalError(f"tiny model {name} must be >= 1, got {value}")
    if hidden % heads:
        raise OpticalError(f"tiny model hidden {hidden} is not a multiple of heads {heads}; pick heads that divide it")
    if not 0 <= seed < 2**32:
        raise OpticalError(f"tiny model seed must be in [0, 2**32), got {seed}")


def check_safetensors(path: Path, role: str = "model") -> None:
    """The header of a safetensors file parses and the file holds every byte it announces."""
    if not path.is_file():
        raise OpticalError(f"{role} {path} is missing")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise OpticalError(f"{role} {path} is corrupt: {size} bytes, too short for a safetensors file")
        length = int.from_bytes(head, "little")
        if length > _MAX_HEADER or 8 + length > size:
            raise OpticalError(f"{role} {path} is corrupt: its header claims {length} bytes but the file has {size}")
        try:
            header = json.loads(fh.read(length))
            ends = [int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"]
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            raise OpticalError(f"{role} {path} is corrupt: its safetensors header is not valid") from None
    expected = 8 + length + max(ends, default=0)
    if expected != size:
        raise OpticalError(f"{role} {path} is corrupt (truncated or padded): {size} bytes, its header announces {expected}")


def file_digests(directory: str | Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size": bytes, "sha256": hex}}`` of every regular file under ``directory``."""
    directory = Path(directory)
    return {
        p.relative_to(directory).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def verify_digests(
    directory: str | Path, digests: dict[str, dict[str, Any]], remedy: str, record: str | Path = "run.json"
) -> None:
    """Refuse ``directory`` when a file recorded in ``digests`` (of ``record``) is missing or changed (size first,
    then sha256); a recorded name that leads out of ``directory`` is refused before anything is read."""
    directory = Path(directory)
    for relative, expected in digests.items():
        path = path_in_record(directory, relative, record, "student_files")
        if not path.is_file():
            raise OpticalError(f"{path} is missing, though the run recorded it; {remedy}")
        size = path.stat().st_size
        if size != expected.get("size"):
            raise OpticalError(f"{path} changed since the run finished ({size} bytes, recorded {expected.get('size')}); {remedy}")
        if sha256_file(path) != expected.get("sha256"):
            raise OpticalError(f"{path} changed since the run finished (sha256 differs from run.json); {remedy}")


def _read_json(path: Path, role: str, why: str) -> Any:
    if not path.is_file():
        raise OpticalError(f"{role} {path.parent}: {path.name} is missing{f' ({why})' if why else ''}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise OpticalError(f"{role} {path} is corrupt: not valid JSON ({detail})") from None
    except OSError as exc:
        raise OpticalError(f"{role} {path} cannot be read ({exc.strerror})") from None
