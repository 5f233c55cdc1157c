"""Fetch the data directory from a local mirror or over HTTP(S), checking every file.

Each file of the registry (``files.json``: path, size, sha256) is installed only
after its size and sha256 match: a tampered or truncated file is refused and
never lands in the data directory. Downloads stream into ``<file>.part`` and
resume with an HTTP Range request when a partial file is left from an
interrupted run; the verified ``.part`` is then renamed onto the final path
(atomic). Local mirror copies go through :func:`optical.storage.atomic_path`.

XQuAD and XQuAD-R can come from their public origins (GitHub raw URLs pinned
to a commit); the bitext files are re-layouts with no public copy, so they need
``mirror`` (a local directory) or ``base_url`` (an HTTP server with the mirror's layout).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from optical.data.registry import GROUPS, DataFile, load_file_registry
from optical.errors import OpticalError
from optical.storage import atomic_path, check_output_dir, output_lock, sha256_file

_CHUNK = 1 << 16


@dataclass
class FetchReport:
    dest: Path
    installed: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    """Installed files whose download continued a ``.part`` left by an earlier run."""

    def render(self) -> str:
        text = f"{self.dest}: {len(self.installed)} files installed, {len(self.already_present)} already present and verified"
        if self.resumed:
            text += f", {len(self.resumed)} resumed"
        return text


class _Refused(Exception):
    """One file could not be installed; the message is a single line."""


def _select(only: Iterable[str] | None) -> list[DataFile]:
    groups = list(GROUPS) if only is None else list(only)
    unknown = [group for group in groups if group not in GROUPS]
    if unknown or not groups:
        raise OpticalError(f"unknown data group {' '.join(unknown) or '(none)'}; choose from: {','.join(GROUPS)}")
    return [entry for entry in load_file_registry() if entry.group in groups]


def _matches(path: Path, entry: DataFile) -> bool:
    return path.is_file() and path.stat().st_size == entry.size and sha256_file(path) == entry.sha256


def _verify(path: Path, entry: DataFile, where: str) -> None:
    size = path.stat().st_size
    if size != entry.size:
        raise _Refused(
            f"{entry.path} from {where} refused: {size} bytes, expected {entry.size} "
            f"(sha256 expected {entry.sha256}, got {sha256_file(path)})"
        )
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise _Refused(f"{entry.path} from {where} refused: sha256 {actual}, expected {entry.sha256}")


def _copy_from_mirror(entry: DataFile, mirror: Path, target: Path, bar: tqdm) -> None:
    source = mirror / entry.path
    if not source.is_file():
        raise _Refused(f"{entry.path} is not in the mirror {mirror}")
    with atomic_path(target) as tmp:
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            while block := src.read(_CHUNK):
                dst.write(block)
                bar.update(len(block))
        _verify(tmp, entry, str(source))


def _download(entry: DataFile, url: str, target: Path, bar: tqdm, timeout: float) -> bool:
    """Download ``url`` into ``target`` via ``target.part``; return True when it resumed a partial file."""
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    if offset > entry.size:  # cannot be a prefix of the right file
        part.unlink()
        offset = 0
    resumed = False
    if offset < entry.size:
        request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                resumed = offset > 0 and response.status == 206
                mode = "ab" if resumed else "wb"
                bar.update(offset if resumed else 0)
                with open(part, mode) as out:
                    while block := response.read(_CHUNK):
                        out.write(block)
                        bar.update(len(block))
        except urllib.error.HTTPError as exc:
            if exc.code != 416:  # 416: nothing left to send, verify what we have
                raise _Refused(f"{entry.path}: download from {url} failed (HTTP {exc.code} {exc.reason})") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise _Refused(f"{entry.path}: download from {url} failed ({exc}); rerun to resume") from exc
    else:
        bar.update(offset)
    try:
        _verify(part, entry, url)
    except _Refused:
        part.unlink()  # a bad partial file must not be resumed next time
        raise
    with open(part, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(part, target)
    return resumed


def fetch_verified(entry: DataFile, url: str, target: Path, timeout: float = 60.0, progress: bool = True) -> Path:
    """``target`` holding exactly ``entry``'s bytes: kept where it already does, else downloaded from ``url`` (resumed
    where a download was cut off), checked by size and sha256, synced and renamed into place; one-line errors."""
    if _matches(target, entry):
        return target
    with tqdm(total=entry.size, unit="B", unit_scale=True, desc=entry.path, disable=not progress, leave=False) as bar:
        try:
            _download(entry, url, target, bar, timeout)
        except _Refused as exc:
            raise OpticalError(f"{exc}; or put the verified file at {target}") from None
    return target


def fetch_data(
    dest: str | Path,
    mirror: str | Path | None = None,
    base_url: str | None = None,
    only: Iterable[str] | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> FetchReport:
    """Install the data files of the ``only`` groups (default all) into ``dest``, verified.

    Files already present with the right sha256 are kept. Every file is tried; if
    any is refused, an OpticalError names the first one (the others stay installed).
    """
    if mirror is not None and base_url is not None:
        raise OpticalError("give either a local mirror or a base URL, not both")
    dest = Path(dest).expanduser()
    mirror = Path(mirror).expanduser() if mirror is not None else None
    if mirror is not None and not mirror.is_dir():
        what = "is a file, not a directory" if mirror.exists() else "does not exist"
        raise OpticalError(f"mirror directory {mirror} {what}; pass the directory that holds the mirrored data")
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise OpticalError(f"base URL {base_url!r} must start with http:// or https://")
    report = FetchReport(dest)
    pending = []
    for entry in _select(only):
        if _matches(dest / entry.path, entry):
            report.already_present.append(entry.path)
        else:
            pending.append(entry)
    if not pending:  # a complete data dir may be read-only (a shared mirror used in place)
        return report
    check_output_dir(dest, "--data-dir")
    with output_lock(dest, "--data-dir"):  # a second fetch into the same dir is refused, not interleaved
        _install(pending, dest, mirror, base_url, progress, timeout, report)
    return report


def _install(
    pending: list[DataFile],
    dest: Path,
    mirror: Path | None,
    base_url: str | None,
    progress: bool,
    timeout: float,
    report: FetchReport,
) -> None:
    """Copy or download each of ``pending`` into ``dest``, verified; OpticalError naming the first refused."""
    failures: list[str] = []
    # Only files still missing need an origin: a complete, verified data dir needs none.
    if mirror is None and base_url is None:
        no_origin = [entry.path for entry in pending if entry.origin_url is None]
        if no_origin:
            raise OpticalError(
                f"{no_origin[0]} (and the other bitext files) has no public origin to download from; "
                "give --mirror DIR or --base-url URL, or fetch only xquad,xquad-r"
            )
    with tqdm(
        total=sum(e.size for e in pending),
        unit="B",
        unit_scale=True,
        desc="optical data fetch",
        disable=None if progress else True,
    ) as bar:
        for entry in pending:
            target = dest / entry.path
            try:
                if mirror is not None:
                    _copy_from_mirror(entry, mirror, target, bar)
                else:
                    url = f"{base_url.rstrip('/')}/{entry.path}" if base_url is not None else entry.origin_url
                    if _download(entry, url, target, bar, timeout):
                        report.resumed.append(entry.path)
                report.installed.append(entry.path)
            except _Refused as exc:
                failures.append(str(exc))
    if failures:
        more = f" (and {len(failures) - 1} more file(s) refused)" if len(failures) > 1 else ""
        raise OpticalError(f"{failures[0]}{more}; nothing bad was installed, rerun `optical data fetch` to retry")
