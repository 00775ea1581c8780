"""Draw an IR graph with graphviz: ``gcomp show FILE.gir`` and ``compiled.show(*args)``.

Note [Drawing a graph]
The drawing is generated as dot text here, in plain Python, and laid out by graphviz's ``dot``
binary (a subprocess; no Python binding is needed). What it shows, for a graph as the text form
prints it (the names are the printer's, so a box and its line in ``ir()`` say the same):

- every node as a box, labelled with its results, op and result types; its tooltip (the SVG
  ``<title>``/``xlink:title`` shown on hover) is the node's IR line and the user's source line;
- edges the data flow, one from each producer to each node reading its value;
- a node holding regions (``fusion``, ``cond``, ``scan``: Note [Regions] in ir/graph.py) as a
  boxed cluster around the region's nodes, labelled with its results and op; a region input
  is not drawn but joined to the operand it receives (aligned from the last operand, so the
  ``pred`` of a cond goes to a small dot in the cluster), and a node outside that reads a
  result of the region node gets its edge from the region node the result comes from. So data
  flow crosses the box where it crosses the region's boundary (a scan's carry from one step to
  the next, a cycle, is not drawn);
- arguments as blue ellipses, state inputs as orange cylinders named by their state path,
  returned values as green boxes and state updates as orange cylinders with a bold border.

Large graphs: ``dot`` slows down steeply with size and with high fan-in, and graphviz 2.43
fails ("trouble in init_rank") or runs for minutes on a few thousand nodes in clusters. Measured
on this project's 2-core machine, training steps of Linear+LayerNorm+ReLU stacks with AdamW:
1,760 boxes in clusters lay out in 2 s; 2,650 fail after minutes; the same graphs with fusion
regions collapsed (one box each, whose high fan-in is what costs) give 495 nodes in 2.6 s, 740
in 4.5 s, 990 in 16-22 s, 1,960 in 75 s. So: above COLLAPSE_ABOVE boxes each ``fusion`` region
is drawn as one box whose tooltip lists what it holds (``collapse=False`` / ``--expand`` draws
every node anyway); above FAST_LAYOUT_ABOVE nodes dot gets a cheaper layout (``nslimit``,
``mclimit``: about twice as fast there, the same picture on small graphs); above MAX_NODES
nodes to place (MAX_COLLAPSED_NODES with fusion regions collapsed, which cost more each)
nothing is laid out and the drawing holds the text form and a message saying what to draw
instead or how to try anyway (``max_nodes=None``, ``--max-nodes 0``); and dot gets
DOT_TIMEOUT_S seconds, after which the call fails with a message instead of hanging.

Without graphviz (no ``dot`` on PATH) nothing is drawn: ``compiled.show()`` returns a Drawing
that holds the IR text and the message saying how to install it (a notebook shows both),
and ``gcomp show`` prints the text on stdout and the message on stderr, exiting 0; only an
explicit ``--out x.svg``, a file that cannot be made, exits 1. Dot text (``.dot``/``.gv``)
and HTML (then holding the text form) are written with or without graphviz.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

from ..ir import parse
from ..ir.errors import GcompError
from ..ir.graph import Graph
from ..ir.ops import OPS
from ..ir.printer import _attrs_text, _namer

COLLAPSE_ABOVE = 1500  # op boxes; above it fusion regions are drawn collapsed by default
FAST_LAYOUT_ABOVE = 300  # dot nodes; above it a cheaper layout
MAX_NODES = 2500  # dot nodes; above it nothing is laid out by default
MAX_COLLAPSED_NODES = 800  # the same with fusion regions collapsed
_AUTO = "auto"
DOT_TIMEOUT_S = 60
INSTALL_HINT = ("graphviz's `dot` program was not found on PATH, so the graph cannot be drawn "
                "(the IR text shows it instead). Install graphviz to draw it: "
                "`apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), "
                "`conda install graphviz`, or see graphviz.org/download.")
_MAX_LABEL_TYPES = 3  # result types in a box's label; the tooltip has them all

_COLORS = {"arg": "#d6e6f5", "state": "#fde0b6", "out": "#cdeccd", "op": "#ffffff",
           "fusion": "#f3f3f3", "region": "#eef3fb", "collapsed": "#e8e8e8"}


def _q(text: str) -> str:
    """A dot string literal (its escString: backslash and quote escaped, newline as \\n)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(**kw) -> str:
    return "[" + ", ".join(f"{k}={_q(str(v))}" for k, v in kw.items() if v is not None) + "]"


def count_nodes(graph: Graph) -> int:
    """Nodes at any depth: each node of the graph and of every region in it."""
    return sum(1 + sum(count_nodes(r) for r in n.regions) for n in graph.nodes)


def _boxes(graph: Graph, collapse: bool) -> int:
    """The op boxes a drawing has: nodes without regions, and collapsed fusions."""
    total = 0
    for n in graph.nodes:
        if not n.regions or (collapse and n.op == "fusion"):
            total += 1
        else:
            total += sum(_boxes(r, collapse) for r in n.regions)
    return total


class _Dot:
    """Builds the dot text of one graph (Note [Drawing a graph])."""

    def __init__(self, collapse: bool):
        self.collapse = collapse
        self.lines: list[str] = []
        self.edges: set[tuple[str, str, str]] = set()
        self.edge_order: list[tuple[str, str, str]] = []
        self.counter = 0
        self.drawn = 0  # dot nodes

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def node(self, pad: str, name: str, **attrs) -> str:
        self.lines.append(f"{pad}{name} {_attrs(id=name, **attrs)};")
        self.drawn += 1
        return name

    def edge(self, src: str, dst: str, tooltip: str) -> None:
        key = (src, dst, tooltip)
        if key not in self.edges:
            self.edges.add(key)
            self.edge_order.append(key)

    def graph(self, g: Graph) -> str:
        names = _namer(g)
        src: dict = {}
        for i, v in enumerate(g.inputs):
            if v.state is not None:
                label, kind, shape = f"{v.state}\n{v.type}", "state", "cylinder"
                tip = f"state input %{names[v]}: {v.type} (state path {v.state})"
            else:
                label, kind, shape = f"%{names[v]}\n{v.type}", "arg", "ellipse"
                tip = f"argument {i}: %{names[v]}: {v.type}"
            src[v] = [self.node("  ", f"in{i}", label=label, shape=shape, fillcolor=_COLORS[kind],
                                tooltip=tip)]
        self.nodes(g.nodes, names, src, "  ")
        for i, v in enumerate(g.outputs):
            out = self.node("  ", f"out{i}", label=f"return {i}\n{v.type}", shape="box",
                            fillcolor=_COLORS["out"], style="filled,bold",
                            tooltip=f"output {i}: %{names.get(v, '?')}: {v.type}")
            self.connect(src, v, out, names)
        for i, (state, v) in enumerate(g.updates):
            upd = self.node("  ", f"update{i}", label=f"update {state}\n{v.type}",
                            shape="cylinder", fillcolor=_COLORS["state"], style="filled,bold",
                            tooltip=f"update {state} <- %{names.get(v, '?')}: {v.type}")
            self.connect(src, v, upd, names)
        fast = self.drawn > FAST_LAYOUT_ABOVE
        graph_attrs = _attrs(rankdir="TB", fontname="Helvetica", fontsize=10, nodesep=0.25,
                             ranksep=0.35, tooltip=f"graph @{g.name}",
                             nslimit=1 if fast else None, mclimit=0.2 if fast else None)
        node_attrs = _attrs(shape="box", style="rounded,filled", fontname="Helvetica",
                            fontsize=10, height=0.3, margin="0.08,0.03")
        head = [f"digraph {_q(g.name)} {{", f"  graph {graph_attrs};", f"  node {node_attrs};",
                f"  edge {_attrs(arrowsize=0.6, color='#555555')};"]
        body = [f"  {a} -> {b} {_attrs(tooltip=t)};" for a, b, t in self.edge_order]
        return "\n".join(head + self.lines + body + ["}"]) + "\n"

    def connect(self, src: dict, value, dst: str, names: dict) -> None:
        tip = f"%{names.get(value, '?')}: {value.type}"
        for s in src.get(value, ()):
            self.edge(s, dst, tip)

    def nodes(self, nodes, names: dict, src: dict, pad: str) -> None:
        for n in nodes:
            if n.regions and not (self.collapse and n.op == "fusion"):
                self.cluster(n, names, src, pad)
                continue
            label_ops = n.op
            tip = _line(n, names)
            fill = _COLORS["op"]
            if n.regions:  # a collapsed fusion
                inner = count_nodes(n.regions[0])
                label_ops = f"fusion ({inner} nodes)"
                tip += "\n" + _summary(n.regions[0])
                fill = _COLORS["collapsed"]
            box = self.node(pad, self.fresh("op"), label=f"{_results(n, names)} = {label_ops}\n"
                            f"{_types(n)}", tooltip=tip, fillcolor=fill)
            for v in n.inputs:
                self.connect(src, v, box, names)
            for o in n.outputs:
                src[o] = [box]

    def cluster(self, n, names: dict, src: dict, pad: str) -> None:
        cid = self.fresh("cluster")
        labels = OPS[n.op].regions if n.op in OPS else ()
        self.lines.append(f"{pad}subgraph {cid} {{")
        inner_pad = pad + "  "
        fill = _COLORS["fusion" if n.op == "fusion" else "region"]
        attrs = _attrs(id=cid, label=f"{_results(n, names)} = {n.op}", tooltip=_line(n, names),
                       style="rounded,filled", color="#888888", fillcolor=fill, labeljust="l")
        self.lines.append(f"{inner_pad}graph {attrs};")
        anchor = None
        sources: list[list[str]] = [[] for _ in n.outputs]
        lead = 0  # operands no region receives (a cond's pred): drawn into the anchor
        for k, region in enumerate(n.regions):
            rpad = inner_pad
            if len(n.regions) > 1:
                rid = self.fresh("cluster")
                name = labels[k] if k < len(labels) else f"region {k}"
                self.lines.append(f"{inner_pad}subgraph {rid} {{")
                rpad = inner_pad + "  "
                attrs = _attrs(id=rid, label=name, style="dashed", fillcolor=_COLORS["region"])
                self.lines.append(f"{rpad}graph {attrs};")
            rnames = _namer(region)
            offset = len(n.inputs) - len(region.inputs)
            lead = max(lead, offset)
            rsrc = {v: list(src.get(n.inputs[offset + i], ())) if offset + i >= 0 else []
                    for i, v in enumerate(region.inputs)}
            self.nodes(region.nodes, rnames, rsrc, rpad)
            if len(region.outputs) == len(n.outputs):
                for j, v in enumerate(region.outputs):
                    sources[j] += [s for s in rsrc.get(v, ()) if s not in sources[j]]
            if len(n.regions) > 1:
                self.lines.append(f"{inner_pad}}}")
        if lead > 0 or not all(sources):
            anchor = self.node(inner_pad, self.fresh("anchor"), label="", shape="point",
                               width=0.08, tooltip=_line(n, names))
            for v in n.inputs[:lead]:
                self.connect(src, v, anchor, names)
        self.lines.append(f"{pad}}}")
        for j, o in enumerate(n.outputs):
            src[o] = sources[j] or [anchor]


def _results(n, names: dict) -> str:
    return ", ".join(f"%{names[o]}" for o in n.outputs)


def _types(n) -> str:
    types = [str(o.type) for o in n.outputs]
    if len(types) > _MAX_LABEL_TYPES:
        return ", ".join(types[:_MAX_LABEL_TYPES]) + f", ... ({len(types)} results)"
    return ", ".join(types)


def _line(n, names: dict) -> str:
    """The node's IR line (as the printer writes it, without its regions) and its source."""
    results = ", ".join(f"%{names[o]}: {o.type}" for o in n.outputs)
    args = ", ".join(f"%{names.get(v, '?')}" for v in n.inputs)
    where = f"at {n.loc}" if n.loc else "(no source location)"
    return f"{results} = {n.op}({args}){_attrs_text(n)}\n{where}"


def _summary(region: Graph) -> str:
    """What a collapsed fusion holds: op counts and the source lines of its members."""
    counts = ", ".join(f"{op} x{k}" for op, k in sorted(region.op_counts().items()))
    locs = sorted({n.loc for n in region.nodes if n.loc})
    return f"holds: {counts}" + (f"\nfrom: {', '.join(locs)}" if locs else "")


def to_dot(graph: Graph | str, collapse: bool | None = None) -> str:
    """The dot text of a graph (or of IR text). ``collapse``: draw each fusion region as one box;
    None decides by size (COLLAPSE_ABOVE)."""
    return _build(_graph(graph), collapse)[0]


def _graph(graph) -> Graph:
    return parse(graph) if isinstance(graph, (str, bytes)) else graph


def _build(g: Graph, collapse: bool | None) -> tuple[str, int, bool]:
    """The dot text, its node count and whether fusion regions are collapsed."""
    if collapse is None:
        collapse = _boxes(g, False) > COLLAPSE_ABOVE
    dot = _Dot(collapse)
    source = dot.graph(g)
    return source, dot.drawn, collapse


def dot_binary() -> str | None:
    return shutil.which("dot")


def render_svg(source: str, timeout: float = DOT_TIMEOUT_S) -> str:
    """Lay out dot text with graphviz's ``dot`` and return the SVG text."""
    dot = dot_binary()
    if dot is None:
        raise GcompError(INSTALL_HINT)
    try:
        done = subprocess.run([dot, "-Tsvg"], input=source.encode(), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise GcompError(f"graphviz's dot took more than {timeout:g} s to lay out this graph; "
                         "draw it with fusion regions collapsed (collapse=True, gcomp show "
                         "--collapse), or draw a smaller graph (one stage, one model block)"
                         ) from None
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        raise GcompError(f"graphviz's dot failed (exit {done.returncode}): "
                         + "\n".join(err[:5] + (["..."] if len(err) > 5 else []))
                         + "\ndraw fewer nodes: collapse=True (gcomp show --collapse) or one stage")
    return done.stdout.decode("utf-8")


class Drawing:
    """A drawn graph: shows itself in a notebook (``_repr_svg_``, ``_repr_html_``), ``save(path)``
    writes .svg, .html or .dot. ``source`` is the dot text, ``text`` the IR text. Where nothing
    can be laid out (no graphviz, or more than ``max_nodes`` nodes to place) ``svg`` is None and
    ``message`` says why and what to do; the notebook then shows the message and the text."""

    def __init__(self, graph: Graph | str, collapse: bool | None = None,
                 max_nodes: int | None | str = _AUTO):
        g = _graph(graph)
        self.name = g.name
        self.text = str(g)
        self.nodes = count_nodes(g)
        self.region_ops = _region_ops(g)  # {"fusion": 7, "scan": 1}: nodes holding regions
        self.source, self.drawn, self.collapsed = _build(g, collapse)
        self.message = None
        self._svg = None
        if dot_binary() is None:
            self.message = INSTALL_HINT
        if max_nodes == _AUTO:
            max_nodes = MAX_COLLAPSED_NODES if self.collapsed else MAX_NODES
        if self.message is None and max_nodes is not None and self.drawn > max_nodes:
            self.message = (
                f"graph @{self.name} would be drawn with {self.drawn} nodes"
                + (" (fusion regions collapsed)" if self.collapsed else "")
                + f", more than max_nodes={max_nodes}, so it is shown as text (graphviz takes "
                "minutes or fails on a few thousand). Draw one stage or a smaller model, collapse "
                "fusion regions "
                "(collapse=True, gcomp show --collapse), or raise the limit (max_nodes=None, "
                "gcomp show --max-nodes 0) to try anyway.")

    @property
    def svg(self) -> str | None:
        """The SVG text (laid out once, on first use); None where ``message`` says why not."""
        if self._svg is None and self.message is None:
            self._svg = render_svg(self.source)
        return self._svg

    def summary(self) -> str:
        """``graph @step: 75 nodes, regions: 7 fusion``: nodes at any depth."""
        regions = ", ".join(f"{k} {op}" for op, k in sorted(self.region_ops.items()))
        collapsed = " (fusion regions collapsed)" if self.collapsed and self.region_ops else ""
        return (f"graph @{self.name}: {self.nodes} nodes"
                + (f", regions: {regions}{collapsed}" if regions else ""))

    def html(self) -> str:
        """A self-contained page: a header (name, counts) and the SVG inline, or the text form."""
        svg = self.svg
        if svg is not None:
            body = _inline_svg(svg)
        else:
            body = (f'<p class="note">{html.escape(self.message)}</p>\n'
                    f"<pre>{html.escape(self.text)}</pre>")
        title = html.escape(f"graph @{self.name}")
        return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n"
                "<style>body{font-family:Helvetica,Arial,sans-serif;margin:1em}"
                "h1{font-size:1.2em;margin:0 0 .2em}p{margin:0 0 1em;color:#444}"
                "pre{font-size:12px}</style></head>\n<body>\n"
                f"<h1>{title}</h1>\n<p>{html.escape(self.summary())}; hover over a node for its "
                f"IR line and source location</p>\n{body}\n</body></html>\n")

    def save(self, path) -> Path:
        """Write the drawing: ``.svg`` (needs graphviz), ``.html``, or ``.dot``/``.gv``."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".svg":
            if self.svg is None:
                raise GcompError(f"cannot write {path}: {self.message}")
            path.write_text(self.svg, encoding="utf-8")
        elif suffix in (".html", ".htm"):
            path.write_text(self.html(), encoding="utf-8")
        elif suffix in (".dot", ".gv"):
            path.write_text(self.source, encoding="utf-8")
        else:
            raise GcompError(f"cannot write {path}: give a file ending in .svg, .html or .dot")
        return path

    def _repr_svg_(self):
        return _inline_svg(self.svg) if self.svg is not None else None

    def _repr_html_(self):
        if self.svg is not None:
            return _inline_svg(self.svg)
        return (f"<p>{html.escape(self.message)}</p><pre>{html.escape(self.text)}</pre>")

    def __repr__(self) -> str:
        if self.message is not None:
            return f"{self.message}\n{self.text}"
        return f"<Drawing of {self.summary()}>"


def _region_ops(g: Graph, counts: dict | None = None) -> dict[str, int]:
    counts = {} if counts is None else counts
    for n in g.nodes:
        if n.regions:
            counts[n.op] = counts.get(n.op, 0) + 1
            for r in n.regions:
                _region_ops(r, counts)
    return counts


def _inline_svg(svg: str) -> str:
    """The ``<svg>`` element alone: no XML declaration, comments or DOCTYPE (which names an
    external DTD), so the page needs nothing from outside."""
    start = svg.find("<svg")
    return re.sub(r"<!--.*?-->\s*", "", svg[start:], flags=re.S) if start >= 0 else svg


def draw(graph: Graph | str, collapse: bool | None = None,
         max_nodes: int | None | str = _AUTO) -> Drawing:
    """Draw a Graph or IR text (a stage's ``graph``, a .gir file's contents). ``collapse``: draw
    each fusion region as one box (None: above COLLAPSE_ABOVE boxes); ``max_nodes``: the most
    nodes to lay out, None for no limit (Note [Drawing a graph])."""
    return Drawing(graph, collapse, max_nodes)
