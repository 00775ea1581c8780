"""The ``gcomp`` command: work with IR files.

    gcomp opt FILE.gir --passes autodiff,dce [--fuel N] [--option name=value ...]
                                                 print the graph after the passes (like mlir-opt);
                                                 with --fuel, after N rewrites in all (and name
                                                 the last one on stderr); --option sets a pass
                                                 option (Note [Pass options])
    gcomp run FILE.gir [--inputs in.npz] [--out out.npz]
                                                 run a graph (inputs by name, or zeros) and print
                                                 or save its outputs
    gcomp verify FILE.gir                        parse and verify, print OK or the error
    gcomp show FILE.gir [--out out.svg|out.html|out.dot] [--passes P] [--collapse|--expand]
                                                 draw the graph with graphviz (FILE.svg by
                                                 default; Note [Drawing a graph] in
                                                 runtime/show.py)
    gcomp bench TARGET [--compare torch|jax]     time a workload (mlp, all) or FILE.py:FUNCTION
                                                 eager vs compiled (gcomp/bench/commands.py)
    gcomp dump TARGET [--out DIR]                write every stage's IR, StableHLO and HLO
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _load(path: str):
    from .ir import parse

    with open(path, "rb") as fh:
        return parse(fh.read())


def _cmd_opt(args) -> int:
    from .passes import run_passes
    from .passes.manager import Fuel

    g = _load(args.file)
    fuel = Fuel(args.fuel) if args.fuel is not None else Fuel.from_env()
    g = run_passes(g, args.passes.split(",") if args.passes else [], fuel=fuel,
                   options=_options(args.option))
    sys.stdout.write(str(g))
    if fuel.limit is not None:  # what bisecting the fuel needs: which rewrite was the last
        print(f"gcomp opt: fuel {fuel.limit}: {fuel.used} rewrite(s) made, the last "
              f"{fuel.last or '(none)'}; next refused: {fuel.refused or '(none)'}",
              file=sys.stderr)
    return 0


def _options(items) -> dict:
    """``name=value`` strings; a value that reads as a Python literal (2048, 0.5, None) is one."""
    import ast

    from .ir.errors import GcompError

    out = {}
    for item in items or ():
        name, eq, text = item.partition("=")
        if not eq or not name:
            raise GcompError(f"--option expects name=value, got {item!r}")
        try:
            out[name.strip()] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[name.strip()] = text
    return out


def _cmd_verify(args) -> int:
    from .ir import verify

    verify(_load(args.file))
    print("OK")
    return 0


def _cmd_run(args) -> int:
    from .ir import compile as compile_graph
    from .lowering import to_jax_dtype

    g = _load(args.file)
    given = dict(np.load(args.inputs)) if args.inputs else {}
    arrays = []
    for v in g.inputs:
        name = v.state or v.name
        if name in given:
            arrays.append(np.asarray(given.pop(name), dtype=to_jax_dtype(v.type.dtype)))
        elif args.inputs:
            raise SystemExit(f"gcomp run: {args.inputs} has no array named {name!r} ({v.type})")
        else:
            arrays.append(np.zeros(v.type.shape, to_jax_dtype(v.type.dtype)))
    outs = compile_graph(g)(*arrays)
    names = [f"out{i}" for i in range(len(g.outputs))] + [s for s, _ in g.updates]
    result = {n: np.asarray(o) for n, o in zip(names, outs)}
    if args.out:
        np.savez(args.out, **result)
        print(f"wrote {len(result)} arrays to {args.out}")
    else:
        for n, a in result.items():
            print(f"{n}: {a.dtype}{list(a.shape)}\n{a}")
    return 0


def _cmd_show(args) -> int:
    """Draw a graph. Without graphviz (or above --max-nodes) the text form goes to stdout and the
    reason to stderr, exit 0; an explicit --out .svg, which then cannot be made, exits 1."""
    from .passes import run_passes
    from .runtime.show import draw

    g = _load(args.file)
    if args.passes:
        g = run_passes(g, args.passes.split(","), options={})
    max_nodes = "auto" if args.max_nodes is None else (args.max_nodes or None)
    drawing = draw(g, collapse=args.collapse, max_nodes=max_nodes)
    out = args.out or str(Path(args.file).with_suffix(".svg"))
    if drawing.message is not None:
        print(f"gcomp show: {drawing.message}", file=sys.stderr)
        if args.out is None or args.out == "-":
            sys.stdout.write(drawing.text)
            return 0
        if Path(out).suffix.lower() == ".svg":
            print(f"gcomp show: {out} not written", file=sys.stderr)
            return 1
    if out == "-":
        sys.stdout.write(drawing.svg)
        return 0
    drawing.save(out)
    print(f"wrote {out}: {drawing.summary()}")
    return 0


def main(argv=None) -> int:
    from .ir.errors import GcompError

    ap = argparse.ArgumentParser(prog="gcomp", description="gcomp: work with IR files")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("opt", help="run passes over an IR file and print the result")
    p.add_argument("file")
    p.add_argument("--passes", default="", help="comma-separated pass names")
    p.add_argument("--fuel", type=int, default=None,
                   help="stop rewriting after N rewrites in all (default: GCOMP_PASS_FUEL)")
    p.add_argument("--option", action="append", metavar="NAME=VALUE",
                   help="a pass option, for example remat_budget=1048576 (repeatable)")
    p.set_defaults(func=_cmd_opt)
    p = sub.add_parser("run", help="run an IR file")
    p.add_argument("file")
    p.add_argument("--inputs", help=".npz with one array per input name")
    p.add_argument("--out", help="save outputs to this .npz")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("verify", help="parse and verify an IR file")
    p.add_argument("file")
    p.set_defaults(func=_cmd_verify)
    p = sub.add_parser("show", help="draw an IR file with graphviz (SVG, HTML or dot)")
    p.add_argument("file")
    p.add_argument("--out", help="out.svg, out.html (self-contained) or out.dot; - for SVG on "
                   "stdout (default: FILE.svg)")
    p.add_argument("--passes", default="", help="comma-separated passes to run first")
    p.add_argument("--collapse", dest="collapse", action="store_const", const=True, default=None,
                   help="draw each fusion region as one box (default: above 1500 boxes)")
    p.add_argument("--expand", dest="collapse", action="store_const", const=False,
                   help="draw every node, however large the graph")
    p.add_argument("--max-nodes", type=int, default=None, metavar="N",
                   help="lay out at most N nodes, 0 for no limit (default: 2500, or 800 with "
                   "fusion regions collapsed)")
    p.set_defaults(func=_cmd_show)
    from .bench.commands import add_parsers as add_bench_parsers

    add_bench_parsers(sub)  # bench and dump
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except GcompError as e:
        print(f"gcomp {args.cmd}: {args.file}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"gcomp {args.cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
