"""Graph -> text. The parser (parser.py) is its exact inverse: parse(str(g)) prints as str(g).

Format, one node a line, types on every result, the user's source line as a trailing comment:

    graph @step(%x: f32[64,1], %w: f32[1,1] state) {
      %0: f32[64,1] = dot_general(%x, %w) {contract=[[1, 0]]}   # linreg.py:12
      return %0
      update %w <- %3
    }

Attributes equal to the op's defaults are left out. A control-flow node's regions follow its line,
indented, each like a graph of its own (Note [Regions] in graph.py).
"""

from __future__ import annotations

import math
import re

from .types import DType

_NAME_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
# a state path is its input's name when the grammar's VALUE allows it and it is not a number
# (numbers name node results): "0.weight" (a Sequential's) prints as %0.weight; any other path
# prints quoted after "state"
_STATE_NAME_OK = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_][A-Za-z0-9_.]*$")
COMMENT_COLUMN_MAX = 88
# string attributes: the parser's STRING token allows no raw newline; parser.py undoes these
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


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
        return '"' + "".join(_ESCAPES.get(c, c) for c in value) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_attr(v) for v in value) + "]"
    if hasattr(value, "item"):  # a numpy scalar
        return format_attr(value.item())
    raise TypeError(f"cannot print attribute value {value!r}")


def _attrs_text(node) -> str:
    from .ops import OPS

    d = OPS.get(node.op)
    order = list(d.attrs) if d is not None else []
    keys = [k for k in order if k in node.attrs] + [k for k in node.attrs if k not in order]
    items = []
    for key in keys:
        if key == "regions":  # printed as blocks after the node's line
            continue
        text = format_attr(node.attrs[key])
        # a value printed like the default parses back to the default, so it can be left out
        if d is not None and key in d.defaults and text == format_attr(d.defaults[key]):
            continue
        items.append(f"{key}={text}")
    return " {" + ", ".join(items) + "}" if items else ""


def _namer(graph):
    """State inputs keep their state path as name (the parser reads the state back from it);
    arguments get their name hint unless a state (captured or created by an update) has it."""
    names: dict = {}
    used: set[str] = set()
    for v in graph.inputs:
        if v.state is not None and _STATE_NAME_OK.match(v.state) and v.state not in used:
            names[v] = v.state
            used.add(v.state)
    reserved = used | {s for s, _ in graph.updates}
    for v in graph.inputs:
        if v in names:
            continue
        base = v.name if v.state is None and v.name else "arg"
        if not _NAME_OK.match(base):
            base = "arg"
        name, k = base, 1
        while name in used or name in reserved:
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
    body, ref = _block(graph, "  ")
    lines = [f"graph @{graph.name}({_params(graph, ref)}) {{", *body]
    for state, v in graph.updates:
        target = next((x for x in graph.inputs if x.state == state), None)
        if target is not None:
            name = ref(target)
        else:  # a state the graph creates (a new .grad): named by its path
            name = "%" + state if _STATE_NAME_OK.match(state) else format_attr(state)
        lines.append(f"  update {name} <- {ref(v)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _params(graph, ref) -> str:
    def marker(v) -> str:
        if v.state is None:
            return ""
        return " state" if ref(v) == "%" + v.state else f" state {format_attr(v.state)}"

    return ", ".join(f"{ref(v)}: {v.type}{marker(v)}" for v in graph.inputs)


def _block(graph, pad: str):
    """The lines of a graph's nodes and its return, at indent ``pad``; each node's regions follow
    it, two spaces deeper, with value names of their own (Note [Regions] in graph.py)."""
    from .ops import OPS

    names = _namer(graph)

    def ref(v) -> str:
        try:
            return "%" + names[v]
        except KeyError:
            return f"%<undefined {v!r}>"

    entries: list[tuple[str, str, list[str]]] = []
    for n in graph.nodes:
        results = ", ".join(f"{ref(o)}: {o.type}" for o in n.outputs)
        args = ", ".join(ref(v) for v in n.inputs)
        loc = " ".join(n.loc.split()) if n.loc else ""  # one line, as the parser reads it back
        nested: list[str] = []
        labels = OPS[n.op].regions if n.op in OPS else ()
        for k, region in enumerate(n.regions):
            label = labels[k] if k < len(labels) else "region"
            inner, inner_ref = _block(region, pad + "    ")
            nested += [f"{pad}  {label}({_params(region, inner_ref)}) {{", *inner, f"{pad}  }}"]
        entries.append((f"{pad}{results} = {n.op}({args}){_attrs_text(n)}", loc, nested))
    width = min(COMMENT_COLUMN_MAX, max((len(t) for t, loc, _ in entries if loc), default=0))
    lines = []
    for text, loc, nested in entries:
        lines.append(f"{text.ljust(width)}  # {loc}" if loc else text)
        lines += nested
    ret = ", ".join(ref(v) for v in graph.outputs)
    lines.append(f"{pad}return {ret}" if ret else f"{pad}return")
    return lines, ref
