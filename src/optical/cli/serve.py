"""``optical serve``: a local web page to search collections with students and see the token alignment."""

from __future__ import annotations

import argparse

from optical.errors import OpticalError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="a local web page: search collections with students, dense and MaxSim scores, token alignments",
        description="Serve a page on http://HOST:PORT/ with a search box, a collection and a student picker, results with "
        "their dense and MaxSim scores, and for a result the OT plan between query and document tokens. "
        "Binds 127.0.0.1 (this machine only) unless --host says otherwise. Needs the serve extra (fastapi, uvicorn).",
    )
    p.add_argument(
        "--collection", action="append", required=True, metavar="[NAME=]DIR", help="a BEIR or TREC dir to offer; repeat"
    )
    p.add_argument("--student", action="append", help="zero-shot or an `optical distill` output dir; repeat (default zero-shot)")
    p.add_argument("--teacher", help="the document encoder (default: the runs' teacher; zero-shot: multilingual-e5-small)")
    p.add_argument("--top-k", type=int, default=10, help="documents per query (default 10)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def collections(values: list[str]) -> dict[str, str]:
    """``NAME=DIR`` or ``DIR`` (named after its last part) -> {name: dir}; a name given twice is refused."""
    from pathlib import Path

    found: dict[str, str] = {}
    for value in values:
        name, equals, path = value.partition("=")
        if not equals:
            name, path = Path(value).resolve().name, value
        if not name or not path:
            raise OpticalError(f"--collection {value!r}: give DIR or NAME=DIR")
        if name in found:
            raise OpticalError(f"--collection: the name {name!r} is given twice; name them NAME=DIR")
        found[name] = path
    return found


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from optical.serve.app import ServeConfig, create_app
    except ImportError as exc:
        raise OpticalError(f"optical serve needs the serve extra ({exc.name} is missing): pip install 'optical[serve]'") from None
    if not 0 <= args.port < 65536:
        raise OpticalError(f"--port must be in 0..65535, got {args.port}")
    config = ServeConfig(collections(args.collection), args.student or ["zero-shot"], args.teacher, args.device, args.top_k)
    app = create_app(config)
    print(f"optical serve: http://{args.host}:{args.port}/ (Ctrl-C stops it)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
