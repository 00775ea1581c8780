"""Which XLA kernel came from which IR nodes and which lines of the user's code.

Note [Kernels]
Each IR node is lowered inside ``jax.named_scope("n<i>.<op>_<loc>")`` (lowering/jit.py), and a
region's nodes inside their own scopes under their node's, so every HLO instruction's
``op_name`` metadata is the path of IR nodes it came from: ``jit(step)/n12.fusion_.../n3.add_...
/add`` is node 3 of the body of top-level node 12. XLA keeps that metadata through its own
fusion, so the optimized HLO says, for each kernel it will run (each instruction of the entry
computation other than parameters, constants and tuples; a ``while`` loop's body is searched
for its kernels in turn), which instructions it contains and hence which IR nodes, gcomp
``fusion`` groups and source locations. :func:`kernels` parses the optimized HLO text for that:
text, because it is the one form of the optimized module that jax exposes on every backend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_COMP = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) \(.*\) -> .* \{$")
_INSTR = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = (.+?) ([\w\-]+)\((.*)$")
_CALLS = re.compile(r"(?:calls|to_apply|body|condition|branch_computations)=\{?%?([\w.\-]+)")
_OPNAME = re.compile(r'op_name="([^"]*)"')
_KIND = re.compile(r"kind=(k\w+)")
_SEGMENT = re.compile(r"^n(\d+)\.")
_SKIP = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast", "copy-start",
         "copy-done", "after-all", "opt-barrier"}
_KINDS = {"kLoop": "loop fusion", "kInput": "reduction fusion", "kOutput": "output fusion",
          "kCustom": "library call"}


@dataclass
class Kernel:
    """One kernel of an executable: its HLO instruction, what kind of kernel, its result type,
    and the IR nodes (``%12/%3 add``: value %3 of the body of the node defining %12), gcomp
    fusion groups and source lines it computes."""

    executable: str
    name: str
    kind: str
    shape: str
    nodes: list[str] = field(default_factory=list)
    fusions: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __str__(self):
        src = ", ".join(self.sources) or "-"
        return f"{self.name} [{self.kind}] {self.shape}: {len(self.nodes)} IR nodes from {src}"


class Kernels(list):
    """A list of :class:`Kernel` that prints as a table."""

    def __str__(self):
        rows = [("executable", "kernel", "kind", "IR nodes", "gcomp fusions", "source lines")]
        for k in self:
            nodes = ", ".join(k.nodes[:4]) + (f", ... ({len(k.nodes)})" if len(k.nodes) > 4
                                              else "")
            rows.append((k.executable, k.name, k.kind, nodes or "-", ", ".join(k.fusions) or "-",
                         ", ".join(k.sources) or "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _computations(hlo: str):
    comps: dict[str, list[tuple]] = {}
    entry = None
    current = None
    for line in hlo.splitlines():
        m = _COMP.match(line)
        if m:
            current = comps.setdefault(m.group(1), [])
            if line.startswith("ENTRY"):
                entry = m.group(1)
            continue
        if current is None:
            continue
        m = _INSTR.match(line)
        if m:
            name, shape, opcode, rest = m.groups()
            op_name = _OPNAME.search(rest)
            kind = _KIND.search(rest)
            current.append((name, shape, opcode, _CALLS.findall(rest),
                            op_name.group(1) if op_name else None,
                            kind.group(1) if kind else None))
    return comps, entry


class _Namer:
    """IR node paths from op_name metadata, against the graph that was lowered."""

    def __init__(self, graph):
        from ..ir.printer import _namer

        self.graph = graph
        self._names: dict[int, dict] = {}
        self._namer = _namer

    def _name(self, graph, node) -> str:
        names = self._names.get(id(graph))
        if names is None:
            names = self._names[id(graph)] = self._namer(graph)
        return "%" + names[node.outputs[0]] if node.outputs else node.op

    def resolve(self, op_name: str):
        """(node path text, fusion node names, the innermost located node's loc) or None."""
        graph, path, fusions, loc, node = self.graph, [], [], None, None
        for seg in op_name.split("/"):
            m = _SEGMENT.match(seg)
            if not m:
                continue
            if node is not None:
                if not node.regions:
                    break
                graph = node.regions[0]
            i = int(m.group(1))
            if i >= len(graph.nodes):
                return None
            node = graph.nodes[i]
            path.append(self._name(graph, node))
            if node.op == "fusion":
                fusions.append("/".join(path))
            loc = node.loc or loc
        if node is None:
            return None
        return "/".join(path) + f" {node.op}", fusions, loc


def kernels(hlo: str, graph, executable: str = "") -> Kernels:
    """The kernels of the optimized HLO ``hlo`` of ``graph``'s executable (Note [Kernels])."""
    comps, entry = _computations(hlo)
    namer = _Namer(graph)
    out = Kernels()

    def names_in(comp: str, seen: set) -> list[str]:
        found = []
        for _, _, _, calls, op_name, _ in comps.get(comp, ()):
            if op_name:
                found.append(op_name)
            for c in calls:
                if c not in seen:
                    seen.add(c)
                    found += names_in(c, seen)
        return found

    def walk(comp: str, prefix: str, seen: set):
        for name, shape, opcode, calls, op_name, kind in comps.get(comp, ()):
            if opcode in _SKIP:
                continue
            if opcode == "while":
                for c in calls:
                    if c not in seen:
                        seen.add(c)
                        walk(c, f"{prefix}{name}/", seen)
                continue
            op_names = ([op_name] if op_name else []) + names_in_all(calls)
            nodes, fusions, sources = [], [], []
            for o in op_names:
                r = namer.resolve(o)
                if r is None:
                    continue
                text, fs, loc = r
                if text not in nodes:
                    nodes.append(text)
                fusions += [f for f in fs if f not in fusions]
                if loc and loc not in sources:
                    sources.append(loc)
            out.append(Kernel(executable, prefix + name,
                              _KINDS.get(kind, f"{kind} fusion") if opcode == "fusion"
                              else opcode, shape, nodes, fusions, sources))

    def names_in_all(calls):
        found, seen = [], set()
        for c in calls:
            if c not in seen:
                seen.add(c)
                found += names_in(c, seen)
        return found

    if entry is not None:
        walk(entry, "", {entry})
    return out
