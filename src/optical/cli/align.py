"""``optical align``: the OT loss's transport plan between a student's foreign tokens and the teacher's English
tokens, as text and as a heatmap (several students side by side)."""

from __future__ import annotations

import argparse
import json
import sys

from optical.cli._types import comma_list
from optical.errors import OpticalError


def _line_numbers(value: str) -> list[int]:
    try:
        numbers = [int(part) for part in comma_list(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give comma-separated line numbers, e.g. 3,17") from None
    return numbers


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "align",
        help="show the OT plan (soft word alignment) of a sentence pair for one or more students",
        description="The entropic OT plan the OPTICAL loss computes between the student's foreign tokens and the teacher's "
        "English tokens, with the loss's own cost and Sinkhorn. Give a pair (--foreign, --english) or a bitext file "
        "(English<TAB>foreign) and --lines; each foreign token is printed with its top English tokens and their share "
        "of its mass; --figure writes the plans side by side as a heatmap (PNG or SVG).",
    )
    p.add_argument("--student", action="append", required=True, help="zero-shot or an `optical distill` output dir; repeat")
    p.add_argument("--foreign", help="the foreign sentence")
    p.add_argument("--english", help="its English translation")
    p.add_argument("--bitext", help="an English<TAB>foreign file (instead of --foreign/--english)")
    p.add_argument("--lines", type=_line_numbers, help="with --bitext: 1-based line numbers, comma-separated")
    p.add_argument("--figure", help="write the heatmap here (.png or .svg); with several lines, one file per line (-N)")
    p.add_argument("--top", type=int, default=3, help="English tokens listed per foreign token (default 3)")
    p.add_argument("--center", default="auto", help="auto (the OT run's --center-costs) | none | sentences")
    p.add_argument("--eps", type=float, help="entropic regularisation (default: the OT run's ot.eps, else 0.05)")
    p.add_argument("--cost", help="cosine | sqeuclidean (default: the OT run's ot.cost, else cosine)")
    p.add_argument("--teacher", help="the teacher (default: the runs' teacher; zero-shot: multilingual-e5-small)")
    p.add_argument("--json", action="store_true", help="print the plans as JSON instead of text")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def _pairs(args: argparse.Namespace) -> list[tuple[str, str]]:
    from optical.align import read_pairs

    if args.bitext:
        if args.foreign or args.english:
            raise OpticalError("give --bitext with --lines, or --foreign with --english, not both")
        if not args.lines:
            raise OpticalError("--bitext needs --lines N[,M...]: the 1-based lines to align")
        return read_pairs(args.bitext, args.lines)
    if args.lines:
        raise OpticalError("--lines goes with --bitext FILE")
    if not args.foreign or not args.english:
        raise OpticalError("give the pair: --foreign TEXT --english TEXT (or --bitext FILE --lines N)")
    return [(args.foreign, args.english)]


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from optical.align import align_pairs, plot_alignments

    if args.top < 1:
        raise OpticalError(f"--top must be >= 1, got {args.top}")
    if args.figure and Path(args.figure).suffix.lower() not in (".png", ".svg"):
        raise OpticalError(f"--figure {args.figure}: give a .png or .svg file name")
    pairs = _pairs(args)
    options = {"center": args.center, "device": args.device, "teacher": args.teacher, "eps": args.eps, "cost": args.cost}
    everything = []
    for number, ((foreign, english), panels) in enumerate(zip(pairs, align_pairs(pairs, args.student, **options)), start=1):
        if args.json:
            everything.append({"foreign": foreign, "english": english, "students": [p.to_dict() for p in panels]})
        else:
            print(f"{foreign}\n{english}")
            print("\n".join(panel.text(args.top) for panel in panels))
        if args.figure:
            figure = Path(args.figure)
            if len(pairs) > 1:
                figure = figure.with_name(f"{figure.stem}-{number}{figure.suffix}")
            written = plot_alignments(panels, figure)
            print(f"heatmap: {written}", file=sys.stderr if args.json else sys.stdout)  # stdout stays JSON
    if args.json:
        print(json.dumps(everything, ensure_ascii=False, indent=2))
    return 0
