"""The ``gcomp bench`` and ``gcomp dump`` subcommands (registered by gcomp/cli.py).

    gcomp bench TARGET [--compare torch|torch-eager|torch.compile|jax ...] [--steps N]
                [--repeat N] [--warmup N] [--budget S] [--batch N] [--json F] [--plot F.png]
    gcomp dump TARGET [--out DIR] [--batch N]

TARGET is a built-in workload (linreg, mlp, cnn, lstm, transformer), several joined by commas,
``all``, or ``FILE.py:FUNCTION`` (Note [User scripts] in gcomp/bench/targets.py). A bad target
is one line on stderr and exit status 1; so is a user function that raises.
"""

from __future__ import annotations

import argparse
import sys

from .runner import COMPARE


def add_parsers(sub) -> None:
    p = sub.add_parser("bench", help="time a workload or FILE.py:FUNCTION, eager vs compiled",
                       description="Time a built-in workload or FILE.py:FUNCTION eagerly and "
                       "compiled (and against PyTorch or JAX): medians, compile time, memory.")
    p.add_argument("target", help="linreg, mlp, cnn, lstm, transformer, a comma list, all, or "
                   "FILE.py:FUNCTION")
    p.add_argument("--compare", action="append", choices=list(COMPARE), default=[],
                   help="add PyTorch eager and torch.compile (torch), one of them, or the "
                   "hand-written JAX step (jax); repeatable")
    p.add_argument("--steps", type=_positive, help="calls per timed round (default: ~20 ms)")
    p.add_argument("--repeat", type=_positive,
                   help="timed rounds (default: until the median is known within 5%%)")
    p.add_argument("--warmup", type=_positive, default=3,
                   help="untimed calls first, the first one compiling (default 3)")
    p.add_argument("--budget", type=float, default=10.0,
                   help="seconds of timed rounds per target when --repeat is not given")
    p.add_argument("--batch", type=_positive, help="the batch size (a script's example_inputs)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw a bar chart (needs matplotlib)")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("dump", help="write every stage's IR, StableHLO, HLO of a target",
                       description="Compile a built-in workload or FILE.py:FUNCTION once and "
                       "write each stage's IR, the StableHLO, XLA's optimized HLO and "
                       "summary.json into a folder.")
    p.add_argument("target", help="a built-in workload, all, or FILE.py:FUNCTION")
    p.add_argument("--out", metavar="DIR", help="the folder (default ./gcomp_dump/NAME)")
    p.add_argument("--batch", type=_positive, help="the batch size (a script's example_inputs)")
    p.set_defaults(func=cmd_dump)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {n}")
    return n


def _fail(cmd: str, message: str) -> int:
    print(f"gcomp {cmd}: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def cmd_bench(args) -> int:
    args.file = args.target  # what gcomp.cli.main names in an error it catches
    from ..ir.errors import GcompError
    from . import report
    from .measure import cores, load_note, versions
    from .runner import benchmark
    from .targets import resolve

    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return _fail("bench", "--plot needs matplotlib: pip install 'gcomp[plot]' (or "
                         "matplotlib)")
    try:
        targets = resolve(args.target, args.batch)
    except GcompError as e:
        return _fail("bench", e)
    settings = dict(steps=args.steps, repeat=args.repeat, warmup=args.warmup,
                    budget=args.budget)
    results, failed = [], []
    for t in targets:
        if t.workload is not None:
            res = benchmark(t.workload, compare=args.compare, **settings)
        else:
            if args.compare:
                print(f"gcomp bench: --compare {' '.join(args.compare)} needs a built-in "
                      f"workload; timing {t.name} eager and compiled", file=sys.stderr)
            res = benchmark(t.fn, *t.inputs, name=t.name, **settings)
            eager = res["eager"]
            if eager.error:
                return _fail("bench", f"{t.path}:{t.fn.__name__} raised {eager.error}")
        results.append(res)
        failed += [f"{res.name} {r.name}: {r.error}" for r in res.rows
                   if r.error and r.name in ("eager", "compiled")]
    print(f"gcomp bench: {versions()}; {load_note(cores(), hint='')}")
    print(report.table(results))
    if args.json:
        report.write_json(args.json, results, {**settings, "compare": args.compare})
        print(f"wrote {args.json}")
    if args.plot:
        report.plot(args.plot, results)
        print(f"wrote {args.plot}")
    for line in failed:
        _fail("bench", line)
    return 1 if failed else 0


def cmd_dump(args) -> int:
    args.file = args.target
    from pathlib import Path

    from ..ir.errors import GcompError
    from .dump import dump
    from .measure import error_text, where
    from .targets import resolve

    try:
        targets = resolve(args.target, args.batch)
    except GcompError as e:
        return _fail("dump", e)
    for t in targets:
        out = args.out
        if out is not None and len(targets) > 1:
            out = Path(out) / t.name
        try:
            if t.workload is not None:
                res = dump(t.workload, out=out)
            else:
                res = dump(t.fn, *t.inputs, out=out, name=t.fn.__name__)
        except Exception as e:  # noqa: BLE001 - the user's function: one line that says where
            return _fail("dump", f"{t.name} raised {error_text(e, where(e))}")
        print(res)
    return 0
