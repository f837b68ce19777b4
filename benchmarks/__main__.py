"""`python -m benchmarks [--quick] [--only SECTIONS]`: the whole suite, one invocation.

Prints progress to stderr and, at the end, the Markdown tables to stdout; writes the
raw numbers to benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from .report import render
from .suite import FULL, QUICK, SECTIONS, run_suite

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (about two minutes)")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument(
        "--report", type=Path, help="print the tables of an earlier JSON result; run nothing"
    )
    return parser


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every `with` that stops a process


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.report:
        print(render(json.loads(args.report.read_text())))
        return 0
    sections = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        print(f"unknown sections: {', '.join(unknown)}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
            plan = QUICK if args.quick else FULL
            results = run_suite(plan, Path(workdir), sections, log, args.quick)
    except KeyboardInterrupt:
        log("interrupted; every server and load process was stopped")
        return 130
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1))
    print(render(results))
    log(f"took {time.perf_counter() - started:.0f} s; raw numbers in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
