"""``optical data``: fetch the data directory, summarise it, check a bitext file, export a task in BEIR layout."""

from __future__ import annotations

import argparse

from optical.cli._types import comma_list
from optical.data.registry import GROUPS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="fetch, summarise and check the data (XQuAD, XQuAD-R, bitext)")
    commands = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    fetch = commands.add_parser("fetch", help="install the verified data files into the data directory")
    fetch.add_argument("--data-dir", help="destination (default: $OPTICAL_DATA_DIR or <cache>/data)")
    origin = fetch.add_mutually_exclusive_group()
    origin.add_argument("--mirror", help="copy from this local mirror directory (e.g. ../shared/data)")
    origin.add_argument("--base-url", help="download from this HTTP(S) server with the mirror's layout")
    fetch.add_argument("--only", type=comma_list, help=f"comma-separated groups to fetch ({','.join(GROUPS)}; default all)")
    fetch.set_defaults(func=_fetch)

    summary = commands.add_parser("summary", help="per-language counts of questions, candidates and bitext pairs")
    summary.add_argument("--data-dir", help="data directory (default: $OPTICAL_DATA_DIR or <cache>/data)")
    summary.set_defaults(func=_summary)

    check = commands.add_parser("check-bitext", help="validate an English<TAB>foreign file and count skipped lines")
    check.add_argument("file", help="path of the .tsv file")
    check.add_argument(
        "--lang", required=True, help="language of the foreign side: any ISO 639 / BCP-47 code (e.g. el, sw, zh-Hant)"
    )
    check.add_argument("--strict", action="store_true", help="fail on the first malformed line")
    check.add_argument("--data-dir", help="data directory, for the reserved FLORES-200 devtest overlap count")
    check.set_defaults(func=_check_bitext)

    export = commands.add_parser("export-beir", help="write the XQuAD-R X->en sentence task in BEIR layout")
    export.add_argument("--lang", required=True, help="query language (an XQuAD-R language, e.g. el)")
    export.add_argument("--split", default="test", help="test (default) or dev")
    export.add_argument("--out", required=True, help="directory to write (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
    export.add_argument("--data-dir", help="data directory (default: $OPTICAL_DATA_DIR or <cache>/data)")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty --out whole")
    export.set_defaults(func=_export_beir)


def _fetch(args: argparse.Namespace) -> int:
    from optical.data.datadir import data_dir_location
    from optical.data.fetch import fetch_data

    report = fetch_data(data_dir_location(args.data_dir), mirror=args.mirror, base_url=args.base_url, only=args.only)
    print(report.render())
    return 0


def _summary(args: argparse.Namespace) -> int:
    from optical.data.datadir import resolve_data_dir
    from optical.data.summary import summarize

    print(summarize(resolve_data_dir(args.data_dir)).render())
    return 0


def _check_bitext(args: argparse.Namespace) -> int:
    from optical.data.bitext import bitext_language, devtest_overlap, flores_base, read_bitext_file
    from optical.data.datadir import data_dir_location
    from optical.data.sources import FLORES_DEVTEST, FLORES_LANGS, bitext_relpath

    loaded = read_bitext_file(args.file, args.lang, strict=args.strict)
    if not loaded.report.kept:  # nothing to train on: a failed check, whatever the reasons the report lists
        from optical.errors import OpticalError

        if not args.strict:
            print(loaded.report.render())
        refusal = "; --strict refuses it" if args.strict else ": training on it would fail"
        raise OpticalError(f"{args.file}: no usable pairs ({loaded.report.lines} lines read, 0 kept){refusal}")
    print(loaded.report.render())
    lang = bitext_language(args.lang).code
    data_dir = data_dir_location(args.data_dir)
    base = flores_base(lang)
    needed = data_dir / bitext_relpath(FLORES_DEVTEST, base or FLORES_LANGS[0])
    if not needed.is_file():  # said, not skipped: the count of pairs training would drop is part of the answer
        print(f"  reserved FLORES-200 devtest: not checked, {needed} is missing (run `optical data fetch`, or pass --data-dir)")
    else:
        sides = f"{base} and English sides" if base else f"English side ({lang} has no devtest of its own)"
        overlap = devtest_overlap(data_dir, lang, loaded.pairs)
        print(
            f"  reserved FLORES-200 devtest ({sides}): {overlap} pairs match it (normalised) and would be dropped from training"
        )
    return 0


def _export_beir(args: argparse.Namespace) -> int:
    from optical.data.beir import export_beir
    from optical.data.datadir import resolve_data_dir

    collection = export_beir(
        resolve_data_dir(args.data_dir, require=("xquad-r",)), args.lang, args.split, args.out, overwrite=args.overwrite
    )
    print(
        f"{collection.path}: {len(collection.queries)} queries, {len(collection.corpus)} documents, "
        f"qrels/{collection.split}.tsv (BEIR layout; evaluate it with `optical evaluate --collection {collection.path} "
        f"--query-lang {args.lang} --student ... --passage-max-length 128`)"
    )
    return 0
