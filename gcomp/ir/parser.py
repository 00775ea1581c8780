"""Text -> Graph. Every failure is an IRParseError with line, column and what was expected."""

from __future__ import annotations

import difflib
import functools
import math
import re
from pathlib import Path

import lark

from .errors import IRParseError, ShapeError
from .graph import Graph, Node, Value
from .types import TensorType, dtype_from_name


@functools.cache
def _lark() -> lark.Lark:
    grammar = (Path(__file__).with_name("grammar.lark")).read_text()
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


_TOKEN_WORDS = {
    "VALUE": "a value like %0", "NAME": "a name", "INT": "an integer", "FLOAT": "a number",
    "REGION": "a region like 'body('", "STRING": "a string", "LOC": "a # comment",
    "STATE": "'state'", "LPAR": "'('", "RPAR": "')'",
    "LBRACE": "'{'", "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "EQUAL": "'='",
    "COLON": "':'", "AT": "'@'", "RETURN": "'return'", "UPDATE": "'update'", "GRAPH": "'graph'",
    "__ANON_0": "'<-'", "$END": "end of text", "<END-OF-FILE>": "end of text",
}
_UNESCAPES = {"n": "\n", "r": "\r", "t": "\t"}  # the inverse of printer._ESCAPES
_MAX_NESTING = 64  # attribute lists nested deeper than this are refused (no RecursionError)


def _expected(tokens) -> str:
    words = sorted({_TOKEN_WORDS.get(t, t) for t in tokens})
    return ", ".join(words[:8]) + (" ..." if len(words) > 8 else "")


def parse(text: str | bytes) -> Graph:
    """Parse IR text into a Graph. Types written on results are checked against the op's rule."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            line = text.count(b"\n", 0, e.start) + 1
            column = e.start - text.rfind(b"\n", 0, e.start)
            raise IRParseError(f"IR text is not UTF-8 ({e.reason} at byte {e.start})", line,
                               column) from None
    if not text.strip():
        raise IRParseError("empty IR text; expected 'graph @name(...) { ... }'", 1, 1)
    try:
        tree = _lark().parse(text)
    except lark.exceptions.UnexpectedToken as e:
        if e.token.type == "$END":
            line, column = _end_of(text)
            raise IRParseError(f"text ends early; expected {_expected(e.expected)}", line,
                               column) from None
        raise IRParseError(f"unexpected {str(e.token)!r}; expected {_expected(e.expected)}",
                           e.line, e.column) from None
    except lark.exceptions.UnexpectedCharacters as e:
        char = text[e.pos_in_stream]
        if char == '"':
            raise IRParseError("unterminated string; close it with '\"' on the same line",
                               e.line, e.column) from None
        if char in "-0123456789":
            word = re.match(r"[-+.\w]*", text[e.pos_in_stream:])[0]
            raise IRParseError(f"malformed number {word!r}; expected {_expected(e.allowed)}",
                               e.line, e.column) from None
        raise IRParseError(f"unexpected character {char!r}; expected {_expected(e.allowed)}",
                           e.line, e.column) from None
    except lark.exceptions.UnexpectedEOF as e:
        line, column = _end_of(text)
        raise IRParseError(f"text ends early; expected {_expected(e.expected)}", line,
                           column) from None
    return _Builder(text).build(tree.children[0])


def _end_of(text: str) -> tuple[int, int]:
    """Line and column just after the last non-blank character: where truncated text stops."""
    text = text.rstrip()
    return text.count("\n") + 1, len(text) - text.rfind("\n")


class _Builder:
    def __init__(self, text: str):
        self.text = text
        self.env: dict[str, Value] = {}
        self.outer: list[dict[str, Value]] = []  # the namespaces around the region being read

    def error(self, msg: str, item) -> IRParseError:
        line = getattr(item, "line", None) or getattr(getattr(item, "meta", None), "line", 1)
        col = getattr(item, "column", None) or getattr(getattr(item, "meta", None), "column", 1)
        return IRParseError(msg, line or 1, col or 1)

    def type_of(self, tree) -> TensorType:
        name, *dims = tree.children
        try:
            dtype = dtype_from_name(str(name))
        except ShapeError as e:
            raise self.error(str(e), name) from None
        shape = []
        for d in dims:
            if d is not None:
                shape.append(self.integer(d))
                if shape[-1] < 0:
                    raise self.error(f"negative dimension {d} in a type", d)
        return TensorType(tuple(shape), dtype)

    def integer(self, tok) -> int:
        try:
            return int(tok)
        except ValueError:  # Python refuses to convert integers of more than 4300 digits
            raise self.error(f"integer literal of {len(tok)} digits is too long", tok) from None

    def lookup(self, tok) -> Value:
        try:
            return self.env[str(tok)[1:]]
        except KeyError:
            if any(str(tok)[1:] in env for env in self.outer):
                raise self.error(f"value {tok} is defined outside this region; regions are "
                                 "closed: pass it to the node as an operand", tok) from None
            raise self.error(f"value {tok} is used before it is defined", tok) from None

    def define(self, tok, value: Value) -> None:
        name = str(tok)[1:]
        if name in self.env:
            raise self.error(f"value %{name} is defined twice (the IR is SSA)", tok)
        self.env[name] = value

    def build(self, tree) -> Graph:
        name, *rest = tree.children
        g = Graph(str(name))
        items = [c for c in rest if c is not None]
        for item in items:
            if item.data == "param":
                tok, typ, state, path = item.children
                if state is not None:
                    state = self.string(path) if path is not None else str(tok)[1:]
                    if any(x.state == state for x in g.inputs):
                        raise self.error(f"state {state!r} is an input twice", tok)
                v = g.add_input(self.type_of(typ), name=str(tok)[1:], state=state)
                self.define(tok, v)
            elif item.data == "node":
                g.nodes.append(self.node(item))
            elif item.data == "ret":
                g.outputs = [self.lookup(t) for t in item.children if t is not None]
            elif item.data == "update":
                target, val = item.children
                quoted = target.type == "STRING"
                tv = None if quoted else self.env.get(str(target)[1:])
                if tv is not None and tv.state is None:
                    raise self.error(f"update target {target} is not a state input", target)
                if quoted:
                    state = self.string(target)
                    tv = next((x for x in g.inputs if x.state == state), None)
                else:
                    state = tv.state if tv is not None else str(target)[1:]
                if any(s == state for s, _ in g.updates):
                    raise self.error(f"state {target} is updated twice", target)
                v = self.lookup(val)
                if tv is not None and v.type != tv.type:
                    raise self.error(f"update of {target}: {tv.type} cannot take {v.type}", val)
                g.updates.append((state, v))
        return g

    @staticmethod
    def string(tok) -> str:
        """A STRING token's text, its escapes undone (printer.format_attr writes them)."""
        return re.sub(r"\\(.)", lambda m: _UNESCAPES.get(m[1], m[1]), str(tok)[1:-1])

    def region(self, tree, label: str) -> Graph:
        """A region: a graph of its own with a fresh namespace (regions are closed)."""
        name, *rest = tree.children
        if str(name) != label:
            raise self.error(f"expected region {label!r} here, got {str(name)!r}", name)
        outer, self.env = self.env, {}
        self.outer.append(outer)
        try:
            g = Graph(label)
            for item in (c for c in rest if c is not None):
                if item.data == "param":
                    tok, typ, state, _ = item.children
                    if state is not None:
                        raise self.error("a region input cannot be state", state)
                    self.define(tok, g.add_input(self.type_of(typ), name=str(tok)[1:]))
                elif item.data == "node":
                    g.nodes.append(self.node(item))
                else:
                    g.outputs = [self.lookup(t) for t in item.children if t is not None]
        finally:
            self.outer.pop()
            self.env = outer
        return g

    def node(self, tree) -> Node:
        from .ops import OPS, infer_types

        results, op_tok, operands, attrs_tree, loc = [], None, [], None, None
        regions = []
        for c in tree.children:
            if c is None:
                continue
            if isinstance(c, lark.Tree) and c.data == "result":
                results.append(c)
            elif isinstance(c, lark.Tree) and c.data == "region":
                regions.append(c)
            elif isinstance(c, lark.Tree) and c.data == "attrs":
                attrs_tree = c
            elif isinstance(c, lark.Token) and c.type == "NAME":
                op_tok = c
            elif isinstance(c, lark.Token) and c.type == "VALUE":
                operands.append(c)
            elif isinstance(c, lark.Token) and c.type == "LOC":
                loc = str(c)[1:].strip() or None
        op = str(op_tok)
        if op not in OPS:
            close = difflib.get_close_matches(op, OPS, n=5, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise self.error(f"unknown op {op!r}{hint}", op_tok)
        inputs = [self.lookup(t) for t in operands]
        attrs = self.attrs(op, attrs_tree) if attrs_tree is not None else {}
        labels = OPS[op].regions
        if len(regions) != len(labels):
            want = ", ".join(labels) if labels else "none"
            raise self.error(f"{op} has {len(labels)} region(s) ({want}), the text gives "
                             f"{len(regions)}", op_tok)
        if labels:
            attrs["regions"] = tuple(self.region(r, k) for r, k in zip(regions, labels))
        declared = [self.type_of(r.children[1]) for r in results]
        try:
            inferred = infer_types(op, [v.type for v in inputs], attrs)
            from .ops import normalize_attrs
            attrs = normalize_attrs(op, attrs)
        except ShapeError as e:
            raise self.error(str(e), op_tok) from None
        if len(inferred) != len(declared):
            raise self.error(f"{op} has {len(inferred)} result(s), the text declares "
                             f"{len(declared)}", op_tok)
        for r, want, got in zip(results, inferred, declared, strict=True):
            if want != got:
                raise self.error(f"{op} gives {want} here, but the text says {got}", r.children[0])
        node = Node(op, inputs, attrs, [], loc)
        node.outputs = [Value(t, node, i) for i, t in enumerate(inferred)]
        for r, v in zip(results, node.outputs, strict=True):
            self.define(r.children[0], v)
        return node

    def attrs(self, op, tree) -> dict:
        from .ops import OPS, _check_attr, _freeze

        kinds = OPS[op].attrs
        out = {}
        for a in tree.children:
            if a is None:
                continue
            key_tok, lit = a.children
            key = str(key_tok)
            if key in out:
                raise self.error(f"attribute {key} given twice", key_tok)
            if key not in kinds or kinds[key] == "regions":
                plain = ", ".join(k for k, kind in kinds.items() if kind != "regions") or "none"
                hint = "; regions are blocks after the node's line" if key == "regions" else ""
                raise self.error(f"{op} has no attribute {key!r} (attributes: {plain}){hint}",
                                 key_tok)
            out[key] = self.literal(lit, kinds[key])
            try:
                _check_attr(op, key, kinds[key], _freeze(out[key]))
            except ShapeError as e:
                raise self.error(str(e), key_tok) from None
        return out

    def literal(self, tree, kind, depth: int = 0):
        if isinstance(tree, lark.Token):  # a bare terminal cannot reach here (rules are aliased)
            raise self.error("unexpected token", tree)
        if depth > _MAX_NESTING:
            raise self.error(f"attribute lists nested deeper than {_MAX_NESTING}", tree)
        kind_of = tree.data
        if kind_of == "int":
            return self.integer(tree.children[0])
        if kind_of == "float":
            s = str(tree.children[0])
            return float(s)
        if kind_of == "string":
            return self.string(tree.children[0])
        if kind_of == "name":
            tok = tree.children[0]
            word = str(tok)
            if word in ("true", "false"):
                return word == "true"
            if word == "nan":
                return math.nan
            if kind == "dtype":
                try:
                    return dtype_from_name(word)
                except ShapeError as e:
                    raise self.error(str(e), tok) from None
            raise self.error(f"unexpected word {word!r} in an attribute", tok)
        if kind_of == "list":
            return tuple(self.literal(c, "any", depth + 1) for c in tree.children if c is not None)
        raise self.error(f"bad attribute literal {kind_of}", tree)
