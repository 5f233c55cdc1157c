"""``optical search``: foreign-language queries against a collection's English documents, with a student."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from optical.errors import OpticalError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search",
        help="search a collection (BEIR or TREC dir) with a student: queries in, top documents out",
        description="Search the English documents of a BEIR or TREC collection with a student's query encoder. "
        "Queries come as arguments, from --queries FILE (one per line, or id<TAB>query), or on stdin. "
        "The corpus encoding is the one `optical evaluate --collection` caches: it is encoded once.",
    )
    p.add_argument("queries", nargs="*", metavar="QUERY", help="queries to search for (none: read --queries or stdin)")
    p.add_argument("--student", default="zero-shot", help="output dir of `optical distill`, or zero-shot (default)")
    p.add_argument("--collection", required=True, help="a BEIR dir (corpus.jsonl) or TREC dir (corpus.jsonl or corpus.tsv)")
    p.add_argument("--queries", dest="queries_file", metavar="FILE", help="queries, one per line (or id<TAB>query); - for stdin")
    p.add_argument("--top-k", type=int, default=10, help="documents per query (default 10)")
    p.add_argument("--scoring", default="dense", help="dense (default: pooled cosine) or maxsim (rerank of the dense top 100)")
    p.add_argument("--teacher", help="the document encoder (default: the run's teacher; zero-shot: multilingual-e5-small)")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the results as JSON")
    output.add_argument("--trec", action="store_true", help="print a TREC run (qid Q0 docid rank score tag)")
    p.add_argument("--tag", default="optical", help="the run tag of --trec (default optical)")
    p.add_argument("--passage-max-length", type=int, default=512, help="document max tokens (default 512, as evaluate)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--mixed-precision", default="auto", help="auto (default) | no | bf16 | fp16, as evaluate")
    p.set_defaults(func=run)


def read_queries(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(ids, texts) from the arguments, else --queries FILE, else stdin; ``id<TAB>text`` lines keep their id."""
    if args.queries and args.queries_file:
        raise OpticalError("give queries as arguments or with --queries FILE, not both")
    if args.queries:
        return [f"q{i}" for i in range(1, len(args.queries) + 1)], list(args.queries)
    if args.queries_file in (None, "-"):
        if args.queries_file is None and sys.stdin.isatty():
            raise OpticalError("no query given: pass queries as arguments, with --queries FILE, or on stdin")
        lines, origin = sys.stdin.read().splitlines(), "stdin"
    else:
        path = Path(args.queries_file)
        if not path.is_file():
            raise OpticalError(f"--queries {path}: no such file; give a file with one query per line")
        try:
            lines, origin = path.read_text(encoding="utf-8-sig").splitlines(), str(path)
        except UnicodeDecodeError as exc:
            raise OpticalError(f"--queries {path}: not UTF-8 (byte {exc.start}); save it as UTF-8") from None
    ids, texts = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        qid, tab, text = line.partition("\t")
        if not tab:
            qid, text = f"q{number}", line
        if not text.strip():
            raise OpticalError(f"{origin}:{number}: query {qid!r} is empty; type the words to search for")
        ids.append(qid.strip())
        texts.append(text.strip())
    return ids, texts


def run(args: argparse.Namespace) -> int:
    from optical.search import SearchConfig, Searcher, check_queries, check_run_tag, trec_lines

    ids, texts = read_queries(args)
    check_queries(texts, ids)  # these checks come before the models load
    if args.top_k < 1:
        raise OpticalError(f"--top-k must be >= 1, got {args.top_k}")
    if args.trec:
        check_run_tag(args.tag)
    config = SearchConfig(
        collection=args.collection,
        student=args.student,
        teacher=args.teacher,
        top_k=args.top_k,
        scoring=args.scoring,
        passage_max_length=args.passage_max_length,
        batch_size=args.batch_size,
        device=args.device,
        mixed_precision=args.mixed_precision,
    )
    results = Searcher(config).search(texts, ids)
    if args.json:
        print(json.dumps([result.to_dict() for result in results], ensure_ascii=False, indent=2))
    elif args.trec:
        print("\n".join(trec_lines(results, args.tag)))
    else:
        for result in results:
            print(f"{result.query_id}  {result.query}")
            for hit in result.hits:
                late = f"  (maxsim {hit.maxsim:.4f}, dense {hit.dense:.4f})" if hit.maxsim is not None else ""
                print(f"  {hit.rank:3d}  {hit.score:.4f}  {hit.doc_id}  {hit.title or hit.snippet}{late}")
    return 0
