"""The command line every app's ``__main__`` uses::

    python -m <app> <stage> --config FILE [--run DIR] [--data FILE] [--input FILE] [--output FILE]
                            [--host H] [--port P] [key=value ...]

A stage is a plain function ``stage(args) -> dict | None``; this module only parses, sets up
logging, calls it, prints the returned summary as JSON, and turns a :class:`UserError` into a
one-line message and exit status 2 (no traceback for mistakes the user can fix).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from shared.errors import UserError


@dataclass(frozen=True)
class Stage:
    run: Callable[[argparse.Namespace], dict | None]
    help: str


def build_parser(prog: str, stages: Mapping[str, Stage], default_config: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=f"{prog}: " + ", ".join(stages))
    sub = parser.add_subparsers(dest="stage", required=True, metavar="stage")
    for name, stage in stages.items():
        p = sub.add_parser(name, help=stage.help, description=stage.help)
        p.add_argument("--config", default=default_config, help=f"recipe YAML (default: {default_config})")
        p.add_argument("--run", default=None, help="run directory (default: runs/<app>/<task>/latest)")
        p.add_argument("--data", default=None, help="a file in the documented format to score")
        p.add_argument("--input", default=None, help="input file for predict/stream ('-' = stdin)")
        p.add_argument("--output", default=None, help="output file ('-' = stdout)")
        p.add_argument("--host", default=os.environ.get("MLREF_HOST", "127.0.0.1"),
                       help="serve: bind address (default 127.0.0.1; 0.0.0.0 to expose)")
        p.add_argument("--port", type=int, default=int(os.environ.get("MLREF_PORT", "8000")))
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.epochs=3")
    return parser


def run_cli(prog: str, stages: Mapping[str, Stage], default_config: str | None = None,
            argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the chosen stage, print its summary; returns the exit status."""
    args = build_parser(prog, stages, default_config).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("jieba", "urllib3", "matplotlib", "PIL", "httpx", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        summary = stages[args.stage].run(args)
    except UserError as exc:
        print(f"{prog} {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog} {args.stage}: interrupted", file=sys.stderr)
        return 130
    if summary:
        print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return 0


def main(prog: str, stages: Mapping[str, Stage], default_config: str | None = None) -> None:
    sys.exit(run_cli(prog, stages, default_config))
