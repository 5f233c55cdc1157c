"""What the command-line tests share: the tiny distill and evaluate command lines, a command's outcome, and a
digest of a directory tree (to check that a refused command changed nothing)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

DISTILL = (
    "distill --lang el --method mse --teacher {teacher} --budget 32 --batch-size 16 --max-length 32 "
    "--select-on none --device cpu --quiet"
)
EVALUATE = "evaluate --teacher {teacher} --tasks align --device cpu --quiet"


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def tree_digest(path: Path) -> dict[str, str] | None:
    """Every file and dir under ``path`` -> sha256 of its bytes (``dir`` for dirs); None when missing."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        item.relative_to(path).as_posix(): "dir" if item.is_dir() else hashlib.sha256(item.read_bytes()).hexdigest()
        for item in sorted(path.rglob("*"))
    }
