"""The ``optical`` command: a thin argparse layer over the Python API.

Each subcommand lives in its own module exposing ``register(subparsers)``;
the handler it installs (``args.func``) calls the package API and returns an
exit status. Subcommand modules import the package API inside their handlers,
not at module level, so that ``optical --help`` never loads torch or transformers.
User errors (:class:`optical.errors.OpticalError`) become one line on stderr and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from optical import __version__
from optical.errors import OpticalError

# Subcommand modules, in the order ``optical --help`` lists them.
_SUBCOMMAND_MODULES = ("data", "model", "distill", "evaluate", "compare", "study", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optical",
        description="Optimal-transport distillation for cross-lingual retrieval (OPTICAL) and its evaluation on XQuAD.",
    )
    parser.add_argument("--version", action="version", version=f"optical {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        importlib.import_module(f"optical.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except OpticalError as exc:
        print(f"optical: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optical: interrupted (completed work is kept; rerun the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
