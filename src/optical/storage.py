"""Files on disk: the user cache, atomic writes and checksums.

Every file the project writes goes through :func:`atomic_write_bytes` /
:func:`atomic_write_text` (write to a temporary file in the same directory,
fsync, rename) so that a killed job never leaves a half-written file that a
later run would take as complete.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs

CACHE_ENV = "OPTICAL_CACHE_DIR"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cache_root() -> Path:
    """The user cache directory: ``$OPTICAL_CACHE_DIR`` or the platform's."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("optical"))


def _temp_prefix(target: Path) -> str:
    """``.<name>.<host>-<pid>.``: a temporary of ``target`` names its writer, so that the next writer can tell a
    leftover of a killed process (same host, pid gone) from one still being built."""
    return f".{target.name}.{_HOST_TAG}-{os.getpid()}."


_HOST_TAG = hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]


def remove_stale_temporaries(target: Path) -> None:
    """Remove the temporaries of ``target`` (file or dir, ``.<name>.<host>-<pid>.*.tmp``) whose writer on this
    host is gone: a killed ``study export`` or ``data fetch`` leaves them, and nothing else would remove them."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.{_HOST_TAG}-(\d+)\..*\.tmp$")
    try:
        candidates = list(target.parent.iterdir())
    except OSError:
        return
    for leftover in candidates:
        match = pattern.match(leftover.name)
        if match and not _process_alive(int(match.group(1))):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def disk_full_error(exc: BaseException, path: str | os.PathLike, exact: bool = False) -> OSError | None:
    """``exc`` as an OSError naming ``path`` (``exact``: the file the system named, where it did) when it says the
    disk (or the file-size limit) is full, else None. An atomic write names its target, not its temporary.

    A full disk surfaces as an OSError without a file name (a ``write`` on an open descriptor) or as a
    library's own error (safetensors: ``IoError(Os { code: 28, kind: StorageFull ...``); both become
    ``<path>: No space left on device``."""
    remedies = {
        errno.ENOSPC: "free space there or write elsewhere",
        errno.EDQUOT: "free space in your quota or write elsewhere",
        errno.EFBIG: "the file-size limit (ulimit -f) is reached; raise it or write elsewhere",
    }
    code = exc.errno if isinstance(exc, OSError) else None
    wrapped = re.search(r"os error (\d+)", str(exc))  # a library's own error (safetensors) around the system's
    if code not in remedies and wrapped:
        code = int(wrapped.group(1))
    if code not in remedies and any(sign in str(exc) for sign in ("No space left on device", "StorageFull")):
        code = errno.ENOSPC
    if code not in remedies:
        return None
    named = exc.filename if exact and isinstance(exc, OSError) and exc.filename else path
    return OSError(code, f"{os.strerror(code)}; {remedies[code]}", str(named))


@contextlib.contextmanager
def naming_a_full_disk(path: str | os.PathLike, exact: bool = False) -> Iterator[None]:
    """Turn a full disk met inside the block into an OSError naming ``path`` (see :func:`disk_full_error`)."""
    try:
        yield
    except Exception as exc:
        named = disk_full_error(exc, path, exact)
        if named is None:
            raise
        raise named from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched. Leftovers of a killed
    earlier writer of ``path`` are removed first; a full disk is an OSError naming ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with naming_a_full_disk(target):
            yield tmp
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        # mkstemp creates 0600; a result file gets the mode a plain open() would give it.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``target``; on success it replaces ``target``.

    A directory cannot be swapped in one ``rename`` when the target exists, so an existing
    target is first renamed aside and removed after the new one is in place; readers see either
    the old complete directory or the new complete one, never a half-built one. Leftovers of a killed
    earlier writer are removed first; a full disk is an OSError naming ``target``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _recover_swapped_out(target)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a directory of results or a model is ordinary readable data
    try:
        with naming_a_full_disk(target):
            yield tmp
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _recover_swapped_out(target: Path) -> None:
    """Undo a swap killed between its two renames: the previous ``target`` waits in ``.<name>.*.old``.
    With ``target`` back in place (or never gone), such leftovers are removed."""
    for old in sorted(target.parent.glob(f".{glob.escape(target.name)}.*.old")):
        if not target.exists() and (old / target.name).is_dir():
            os.replace(old / target.name, target)
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Refuse an output location that cannot become a directory we may write, before any work.

    One-line :class:`~optical.errors.OpticalError` when ``path`` is a regular file, when a parent
    on the way is a file, or when the directory it would be created in (or the directory itself)
    is not writable. Leaves nothing behind (a probe directory is made and removed).
    """
    from optical.errors import OpticalError

    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise OpticalError(f"{flag} {target} is a file, not a directory; pick another {flag}")
    probe = target
    while not probe.exists():
        parent = probe.parent
        if parent == probe:
            break
        probe = parent
    if probe.exists() and not probe.is_dir():
        raise OpticalError(f"{flag} {target}: {probe} is a file, not a directory; pick another {flag}")
    # The dir itself is written into (when it exists) and its parent takes the atomic swap.
    for directory in sorted({probe, probe.parent} if probe == target else {probe}):
        refusal = _write_refusal(directory) if directory.exists() else None
        if refusal:
            raise OpticalError(f"{flag} {target}: directory {directory} is not writable ({refusal}); pick another {flag}")
    return target


#: Name prefix of the empty directory :func:`check_output_dir` makes and removes to learn whether it may write.
PROBE_PREFIX = ".optical-probe-"


def _write_refusal(directory: Path) -> str | None:
    """Why a file cannot be made in ``directory``, or None when it can. A directory is made and removed at once:
    ``os.access`` answers yes to root on a read-only mount or in /proc, where the real write then fails."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=PROBE_PREFIX, dir=directory))
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def directory_kind(path: str | os.PathLike) -> str | None:
    """What an existing, non-empty directory holds, by its marker files: ``"evaluation"`` (eval.json),
    ``"distill"`` (run.json or config.json of `optical distill`), ``"study"`` (study.json),
    ``"report"`` (comparison.json), ``"other"``; None for a missing or empty directory."""
    target = Path(path)
    if not target.is_dir():
        return None
    names = {p.name for p in target.iterdir()}
    if not names:
        return None
    if "eval.json" in names:
        return "evaluation"
    if "run.json" in names or _is_distill_marker(target / "config.json"):
        return "distill"
    if "study.json" in names:
        return "study"
    if "comparison.json" in names:
        return "report"
    return "other"


def _is_distill_marker(path: Path) -> bool:
    try:
        return "fingerprint" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError):
        return False


def load_json_file(path: str | os.PathLike, what: str, remedy: str) -> Any:
    """The parsed content of a JSON file that the project wrote; one line naming the file (and the line and column
    of a syntax error) and ``remedy`` when it is missing, unreadable or damaged."""
    from optical.errors import OpticalError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OpticalError(f"{what} {path} is missing; {remedy}") from None
    except UnicodeDecodeError:
        raise OpticalError(f"{what} {path} is damaged (not UTF-8); {remedy}") from None
    except json.JSONDecodeError as exc:
        raise OpticalError(
            f"{what} {path} is damaged (not valid JSON at line {exc.lineno}, column {exc.colno}); {remedy}"
        ) from None
    except OSError as exc:
        raise OpticalError(f"{what} {path} cannot be read ({exc.strerror}); {remedy}") from None


def _unique_key_loader() -> type:
    """PyYAML's SafeLoader, refusing a mapping that gives a key twice: PyYAML keeps the last value silently, so a
    config that sets ``languages`` twice would run a study other than the one its first lines describe."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        class DuplicateKey(yaml.constructor.ConstructorError):
            """Valid YAML that this project refuses."""

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden here
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    duplicate = key in seen
                except TypeError:  # an unhashable key: SafeLoader's own error names it below
                    continue
                if duplicate:
                    raise self.DuplicateKey(
                        None, None, f"key {key!r} is given twice in this mapping; keep one", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def load_yaml_file(path: str | os.PathLike, what: str = "config file") -> Any:
    """The parsed content of a YAML file; one-line errors naming ``file:line:column`` for a syntax
    error, and the file for one that is missing, a directory or not UTF-8.

    A ``.json`` file (e.g. a run's ``run.json``) is parsed as JSON: PyYAML reads YAML 1.1, where a JSON number
    such as ``2e-05`` is a string."""
    import yaml

    from optical.errors import OpticalError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OpticalError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise OpticalError(f"{what} {path} is a directory, not a YAML file") from None
    except UnicodeDecodeError:
        raise OpticalError(f"{what} {path} is not UTF-8 text") from None
    except OSError as exc:
        raise OpticalError(f"{what} {path} cannot be read ({exc.strerror})") from None
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise OpticalError(f"{path}:{exc.lineno}:{exc.colno}: {what} is not valid JSON: {exc.msg}") from None
    loader = _unique_key_loader()
    try:
        return _load_bounded(text, loader, path, what)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        verdict = "is refused" if isinstance(exc, loader.DuplicateKey) else "is not valid YAML"
        raise OpticalError(f"{where}: {what} {verdict}: {problem or 'syntax error'}") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OpticalError(f"{what} {path} is not valid YAML: {first}") from None


# ------------------------------------------------------------------ paths named by records, one writer per output dir
def path_in_record(base: str | os.PathLike, value: Any, record: str | os.PathLike, field: str, follow_links: bool = True) -> Path:
    """``base / value`` for a path that a record file (eval.json, study.json, run.json) names relative to its own
    directory ``base``; a one-line :class:`~optical.errors.OpticalError` naming the record, the field and the value
    for one that could lead out of ``base``: not a string, empty, absolute, with a ``..`` part or a NUL byte, or
    (``follow_links``) one whose real path lies outside ``base``'s real path.

    Every path read from a record goes through here: a hand-edited or hostile record must not make a command read,
    or write, another directory's files. A study's ``runs/<id>`` are links into the run store by design, so a study
    manifest's paths are checked without ``follow_links``."""
    from optical.errors import OpticalError

    base = Path(base)
    problem = None
    if not isinstance(value, str) or not value:
        problem = "is not a relative path"
    elif "\0" in value:
        problem = "holds a NUL byte"
    elif Path(value).is_absolute() or value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        problem = "is absolute"
    elif ".." in re.split(r"[/\\]", value):
        problem = "climbs out with '..'"
    joined = base / value if problem is None else None
    if joined is not None and follow_links and not joined.resolve().is_relative_to(base.resolve()):
        problem = "leads outside through a link"
    if problem is not None:
        shown = repr(value) if not isinstance(value, str) else repr(value[:120])
        raise OpticalError(
            f"{record}: {field} {shown} {problem}; a record may only name files inside {base} (restore or rerun it)"
        )
    return joined


#: Directory of the output locks, under the cache dir: a lock file beside or inside an output dir would be moved
#: away by its atomic swap, or left behind in the user's directory.
LOCKS_DIR = "locks"


def _lock_file(target: Path) -> Path:
    key = hashlib.sha256(str(Path(target).expanduser().resolve()).encode("utf-8")).hexdigest()[:24]
    return cache_root() / LOCKS_DIR / f"{key}.lock"


@contextlib.contextmanager
def output_lock(target: str | os.PathLike, flag: str = "--out") -> Iterator[None]:
    """Hold the one writer's lock of output dir ``target`` for this process; a second writer (another
    ``optical`` process writing the same dir) is refused at once, in one line naming the holder.

    An exclusive, non-blocking ``flock`` on a file keyed by the dir's real path: the kernel drops it when the
    holder exits, killed or not, so a crashed writer never blocks the next one."""
    from optical.errors import OpticalError

    target = Path(target).expanduser()
    path = _lock_file(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = _acquire(path)
    except OSError as exc:
        raise OpticalError(f"cannot create the lock of {flag} {target} in {path.parent} ({exc.strerror})") from None
    if handle is None:
        holder = _read_holder(path)
        raise OpticalError(
            f"{flag} {target} is being written by another optical process ({holder}); "
            f"wait for it to finish, or pick another {flag}"
        )
    try:
        command = " ".join(["optical", *sys.argv[1:]])[:300] if sys.argv else "optical"
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}: {command}\n")
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still held: a writer waiting on this inode sees it gone (see _acquire)
        handle.close()


def _acquire(path: Path):
    """The open, locked lock file at ``path``, or None while another process holds it."""
    while True:
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            handle.seek(0)
            handle.truncate()
            return handle
        handle.close()  # the holder removed the file between our open and our lock: take the new one


def _read_holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "holder not yet named"


#: The most values (scalars, lists, mappings) a YAML config may hold once its aliases are expanded: a config is a
#: page of settings, while an alias bomb ("billion laughs") expands a few lines into billions.
MAX_YAML_VALUES = 100_000


def _load_bounded(text: str, loader_class: type, path: Path, what: str) -> Any:
    """The single document of ``text``, built only once its node graph, aliases expanded, holds at most
    :data:`MAX_YAML_VALUES` values and no alias to itself (counted over the shared nodes, without expanding)."""
    from optical.errors import OpticalError

    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node) > MAX_YAML_VALUES:
            raise OpticalError(
                f"{what} {path} is refused: its aliases (*name) expand to more than {MAX_YAML_VALUES} values or into themselves; "
                "write the settings out without nested aliases"
            )
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _expanded_size(root: Any) -> int:
    """How many nodes the graph under ``root`` has once every alias is expanded (a shared node counts once per
    use), capped just above :data:`MAX_YAML_VALUES`; a cycle counts as unbounded."""
    import yaml

    sizes: dict[int, int] = {}
    over = MAX_YAML_VALUES + 1

    def size(node: Any, visiting: frozenset) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in visiting:
            return over  # an alias inside its own anchor: infinite once expanded
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        else:
            children = []
        inner = visiting | {id(node)}
        for child in children:
            total = min(over, total + size(child, inner))
            if total >= over:
                break
        sizes[id(node)] = total
        return total

    return size(root, frozenset())
