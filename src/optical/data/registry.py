"""The registry of every file of a data directory: path, size, sha256, origin.

``files.json`` (committed beside this module) is generated once from the data
mirror by :func:`build_file_registry`; the test-suite checks that it still
matches the mirror. XQuAD and XQuAD-R files are unmodified upstream files with
a public origin URL; bitext files are re-layouts (one pair per line) and carry
their upstream repository as provenance only, so they are fetched from a mirror.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from optical.data.languages import XQUAD_LANGS, XQUADR_LANGS, get_language
from optical.data.mirror_languages import MIRROR_LANGUAGES
from optical.data.sources import SOURCES, bitext_relpath
from optical.storage import atomic_write_text, sha256_file

GROUPS: tuple[str, ...] = ("xquad", "xquad-r", "bitext")
REGISTRY_PATH = Path(__file__).with_name("files.json")

XQUAD_COMMIT = "7d30520c717524000f0d9d2f9c10a069acd9d285"
XQUADR_COMMIT = "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c"
_XQUAD_ORIGIN = f"https://raw.githubusercontent.com/google-deepmind/xquad/{XQUAD_COMMIT}/"
_XQUADR_ORIGIN = f"https://raw.githubusercontent.com/google-research-datasets/lareqa/{XQUADR_COMMIT}/"


@dataclass(frozen=True)
class DataFile:
    path: str
    """Relative path inside a data directory (the mirror's layout)."""
    group: str
    size: int
    sha256: str
    origin_url: str | None
    """Public URL of the identical upstream file, or None for re-laid-out bitext."""
    provenance: str


def xquad_relpath(lang: str) -> str:
    return f"xquad/xquad.{lang}.json"


def xquadr_relpath(lang: str) -> str:
    return f"xquad-r/{lang}.json"


#: Each content-controlled source's upstream file of one language, from its row of the mirror's language table.
_UPSTREAM_FILES = {
    "ntrex128": lambda row: f"NTREX-128/newstest2019-ref.{row.ntrex}.txt",
    "flores200_devtest": lambda row: f"{row.flores}.devtest",
    "flores200_sib_dev_extra": lambda row: f"data/annotated/{row.flores}/",
}
_MIRROR_ROWS = {get_language(row.file_code).code: row for row in MIRROR_LANGUAGES}


def _bitext_provenance(source: str, lang: str) -> str:
    origin = SOURCES[source]
    upstream = _UPSTREAM_FILES[source](_MIRROR_ROWS[lang]) if source in _UPSTREAM_FILES else None
    return f"re-layout of {origin.origin}{f', file {upstream}' if upstream else ''}; license {origin.license}"


def _expected_entries() -> list[tuple[str, str, str | None, str]]:
    """(path, group, origin_url, provenance) of every data file, in a fixed order."""
    entries: list[tuple[str, str, str | None, str]] = []
    for lang in XQUAD_LANGS:
        url = _XQUAD_ORIGIN + f"xquad.{lang}.json"
        entries.append((xquad_relpath(lang), "xquad", url, f"github.com/google-deepmind/xquad @ {XQUAD_COMMIT}"))
    for lang in XQUADR_LANGS:
        url = _XQUADR_ORIGIN + f"xquad-r/{lang}.json"
        entries.append((xquadr_relpath(lang), "xquad-r", url, f"github.com/google-research-datasets/lareqa @ {XQUADR_COMMIT}"))
    for source in SOURCES.values():
        for lang in source.languages:
            entries.append((bitext_relpath(source.name, lang), "bitext", None, _bitext_provenance(source.name, lang)))
    return entries


def build_file_registry(mirror: Path) -> list[DataFile]:
    """Hash every data file of ``mirror`` (what ``files.json`` was written from, and what the tests check it against)."""
    return [
        DataFile(path, group, (mirror / path).stat().st_size, sha256_file(mirror / path), url, provenance)
        for path, group, url, provenance in _expected_entries()
    ]


def load_file_registry() -> list[DataFile]:
    return [DataFile(**entry) for entry in json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))]


def write_file_registry(mirror: Path) -> None:
    """Regenerate ``files.json`` from ``mirror`` (run once after the mirror gains files; the tests compare the two)."""
    entries = [dataclasses.asdict(entry) for entry in build_file_registry(mirror)]
    atomic_write_text(REGISTRY_PATH, json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
