"""The ``optical`` command: a thin argparse layer over the Python API.

Each subcommand lives in its own module exposing ``register(subparsers)``;
the handler it installs (``args.func``) calls the package API and returns an
exit status. Subcommand modules import the package API inside their handlers,
not at module level, so that ``optical --help`` never loads torch or transformers.
User errors (:class:`optical.errors.OpticalError`, argparse errors, a file operation the
system refuses) become one line on stderr and exit status 2. Anything else is a bug: one line
naming it and the path of a full log under the cache dir (``<cache>/logs``), exit status 1;
``--debug`` (anywhere on the line) or ``OPTICAL_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import traceback
from typing import NoReturn

from optical import __version__
from optical.errors import OpticalError

# Subcommand modules, in the order ``optical --help`` lists them.
_SUBCOMMAND_MODULES = ("data", "model", "distill", "evaluate", "search", "align", "serve", "compare", "study", "demo")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``optical <command>: error: ...`` and a pointer to ``--help``,
    instead of the usage block (subparsers inherit the class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="optical",
        description="Optimal-transport distillation for cross-lingual retrieval (OPTICAL) and its evaluation on XQuAD.",
    )
    parser.add_argument("--version", action="version", version=f"optical {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an unexpected error (also: OPTICAL_DEBUG=1)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        importlib.import_module(f"optical.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("OPTICAL_DEBUG", "") not in ("", "0")
    argv = [arg for arg in argv if arg != "--debug"]  # accepted anywhere on the line
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named here, not by the top parser: the pointer goes to the command's own --help
        command = getattr(args, "command", None)
        where = " ".join(["optical", *filter(None, [command, getattr(args, f"{command}_command", None)])])
        parser.exit(2, f"{where}: error: unrecognized arguments: {' '.join(extra)} (see `{where} --help`)\n")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except OpticalError as exc:
        print(f"optical: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optical: interrupted (completed work is kept; rerun the same command to resume)", file=sys.stderr)
        return 130
    except OSError as exc:
        # The system refused a file operation (permissions, a full disk, a file where a dir belongs).
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"optical: error: {where}{exc.strerror or exc} (see the log: {_write_log(argv)})", file=sys.stderr)
        return 2
    except Exception as exc:
        if debug:
            raise
        detail = _one_line(str(exc)) or "no message"
        log = _write_log(argv)
        print(
            f"optical: internal error: {type(exc).__name__}: {detail} (full log: {log}; rerun with --debug to see it here)",
            file=sys.stderr,
        )
        return 1


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def _write_log(argv: list[str]) -> str:
    """Write the current exception's traceback to a log file under the cache dir; its path."""
    from optical.storage import cache_root

    text = f"optical {__version__}: optical {' '.join(argv)}\n\n{traceback.format_exc()}"
    try:
        logs = cache_root() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(text, encoding="utf-8")
        return str(path)
    except OSError:
        pass
    try:
        fd, name = tempfile.mkstemp(prefix="optical-error-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return name
    except OSError as exc:  # a full disk takes the temp dir too: the one line must still come out
        return f"none written: {exc.strerror or exc}"


if __name__ == "__main__":
    sys.exit(main())
