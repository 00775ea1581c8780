"""Graph -> text. The parser (parser.py) is its exact inverse: parse(str(g)) prints as str(g).

Format, one node a line, types on every result, the user's source line as a trailing comment:

    graph @step(%x: f32[64,1], %w: f32[1,1] state) {
      %0: f32[64,1] = dot_general(%x, %w) {contract=[[1, 0]]}   # linreg.py:12
      return %0
      update %w <- %3
    }

Attributes equal to the op's defaults are left out.
"""

from __future__ import annotations

import math
import re

from .types import DType

_NAME_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
COMMENT_COLUMN_MAX = 88


def format_attr(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, DType):
        return value.short
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_attr(v) for v in value) + "]"
    if hasattr(value, "item"):  # a numpy scalar
        return format_attr(value.item())
    raise TypeError(f"cannot print attribute value {value!r}")


def _attrs_text(node) -> str:
    from .ops import OPS

    d = OPS.get(node.op)
    items = []
    for key, val in node.attrs.items():
        if d is not None and key in d.defaults and _same(d.defaults[key], val):
            continue
        items.append(f"{key}={format_attr(val)}")
    return " {" + ", ".join(items) + "}" if items else ""


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _namer(graph):
    names: dict = {}
    used: set[str] = set()
    for v in graph.inputs:
        base = v.state or v.name or "arg"
        if not _NAME_OK.match(base) or base[0].isdigit():
            base = "arg"
        name, k = base, 1
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        names[v] = name
    counter = 0
    for n in graph.nodes:
        for o in n.outputs:
            names[o] = str(counter)
            counter += 1
    return names


def print_graph(graph) -> str:
    names = _namer(graph)

    def ref(v) -> str:
        try:
            return "%" + names[v]
        except KeyError:
            return f"%<undefined {v!r}>"

    params = ", ".join(f"{ref(v)}: {v.type}" + (" state" if v.state else "") for v in graph.inputs)
    body: list[tuple[str, str | None]] = []
    for n in graph.nodes:
        results = ", ".join(f"{ref(o)}: {o.type}" for o in n.outputs)
        args = ", ".join(ref(v) for v in n.inputs)
        body.append((f"  {results} = {n.op}({args}){_attrs_text(n)}", n.loc))
    width = min(COMMENT_COLUMN_MAX, max((len(t) for t, loc in body if loc), default=0))
    lines = [f"graph @{graph.name}({params}) {{"]
    for text, loc in body:
        lines.append(f"{text.ljust(width)}  # {loc}" if loc else text)
    ret = ", ".join(ref(v) for v in graph.outputs)
    lines.append(f"  return {ret}" if ret else "  return")
    for _, v in graph.updates:
        pass
    for state, v in graph.updates:
        target = next((x for x in graph.inputs if x.state == state), None)
        lines.append(f"  update {ref(target) if target is not None else '%' + state} <- {ref(v)}")
    lines.append("}")
    return "\n".join(lines) + "\n"
