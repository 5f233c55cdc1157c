"""``optical data``: fetch the data directory, summarise it, check a bitext file."""

from __future__ import annotations

import argparse

from optical.data.registry import GROUPS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="fetch, summarise and check the data (XQuAD, XQuAD-R, bitext)")
    commands = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    fetch = commands.add_parser("fetch", help="install the verified data files into the data directory")
    fetch.add_argument("--data-dir", help="destination (default: $OPTICAL_DATA_DIR or <cache>/data)")
    origin = fetch.add_mutually_exclusive_group()
    origin.add_argument("--mirror", help="copy from this local mirror directory (e.g. ../shared/data)")
    origin.add_argument("--base-url", help="download from this HTTP(S) server with the mirror's layout")
    fetch.add_argument("--only", help=f"comma-separated groups to fetch ({','.join(GROUPS)}; default all)")
    fetch.set_defaults(func=_fetch)

    summary = commands.add_parser("summary", help="per-language counts of questions, candidates and bitext pairs")
    summary.add_argument("--data-dir", help="data directory (default: $OPTICAL_DATA_DIR or <cache>/data)")
    summary.set_defaults(func=_summary)

    check = commands.add_parser("check-bitext", help="validate an English<TAB>foreign file and count skipped lines")
    check.add_argument("file", help="path of the .tsv file")
    check.add_argument("--lang", required=True, help="language of the foreign side (e.g. el)")
    check.add_argument("--strict", action="store_true", help="fail on the first malformed line")
    check.set_defaults(func=_check_bitext)


def _fetch(args: argparse.Namespace) -> int:
    from optical.data.datadir import data_dir_location
    from optical.data.fetch import fetch_data

    only = [group.strip() for group in args.only.split(",") if group.strip()] if args.only else None
    report = fetch_data(data_dir_location(args.data_dir), mirror=args.mirror, base_url=args.base_url, only=only)
    print(report.render())
    return 0


def _summary(args: argparse.Namespace) -> int:
    from optical.data.datadir import resolve_data_dir
    from optical.data.summary import summarize

    print(summarize(resolve_data_dir(args.data_dir)).render())
    return 0


def _check_bitext(args: argparse.Namespace) -> int:
    from optical.data.bitext import read_bitext_file

    print(read_bitext_file(args.file, args.lang, strict=args.strict).report.render())
    return 0
