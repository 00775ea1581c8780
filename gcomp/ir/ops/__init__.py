"""The op table: every primitive declared once with its attributes and its shape/dtype rule.

Each family module (elementwise, reduce, shape, linalg, conv, window, random, control) declares
its ops with :func:`declare`. The jax lowering rules live in ``gcomp/lowering/<family>.py`` and the
VJP rules in ``gcomp/autodiff/<family>.py``, registered by the same names; a coverage test fails
when a primitive lacks either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ShapeError
from ..graph import Graph
from ..types import DType, TensorType

# attribute kinds: how the verifier checks them and how the parser reads them
ATTR_KINDS = ("int", "ints", "int_pairs", "float", "bool", "dtype", "str", "shape", "literal",
              "any", "regions")


@dataclass
class OpDef:
    name: str
    family: str
    rule: Callable[..., list[TensorType]]  # rule(in_types, **attrs) -> out types
    arity: int | None  # None: variadic
    attrs: dict[str, str] = field(default_factory=dict)  # name -> kind
    defaults: dict[str, Any] = field(default_factory=dict)
    differentiable: bool = True
    doc: str = ""
    regions: tuple[str, ...] = ()  # names of the nested graphs it holds (Note [Regions])


OPS: dict[str, OpDef] = {}


def declare(name: str, family: str, arity: int | None, attrs: dict[str, str] | None = None,
            defaults: dict[str, Any] | None = None, differentiable: bool = True,
            regions: tuple[str, ...] = ()):
    """Decorator registering ``rule`` as the shape/dtype rule of primitive ``name``.

    An op holding nested graphs names them in ``regions``; they travel as its attribute
    ``regions`` (a tuple of Graphs, see Note [Regions] in ir/graph.py), which the rule receives
    like any other attribute."""

    def deco(rule):
        if name in OPS:
            raise RuntimeError(f"primitive {name} declared twice")
        kinds = dict(attrs or {})
        if regions:
            kinds["regions"] = "regions"
        OPS[name] = OpDef(name, family, rule, arity, kinds, dict(defaults or {}),
                          differentiable, (rule.__doc__ or "").strip(), tuple(regions))
        return rule

    return deco


def _check_attr(op: str, key: str, kind: str, value: Any) -> None:
    ok = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "ints": lambda v: isinstance(v, (list, tuple)) and all(
            isinstance(i, int) and not isinstance(i, bool) for i in v),
        "shape": lambda v: isinstance(v, (list, tuple)) and all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v),
        "int_pairs": lambda v: isinstance(v, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(i, int) for i in p)
            for p in v),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "dtype": lambda v: isinstance(v, DType),
        "str": lambda v: isinstance(v, str),
        "literal": lambda v: isinstance(v, (int, float, bool, list, tuple)),
        "any": lambda v: True,
        "regions": lambda v: isinstance(v, tuple) and all(isinstance(g, Graph) for g in v)
        and len(v) == len(OPS[op].regions),
    }[kind]
    if not ok(value):
        raise ShapeError(f"{op}: attribute {key}={value!r} is not a valid {kind}")


def normalize_attrs(op: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and check every attribute against the op's declaration."""
    d = get(op)
    out = {k: _freeze(v) for k, v in d.defaults.items()}
    out.update({k: _freeze(v) for k, v in attrs.items()})
    for key in out:
        if key not in d.attrs:
            known = ", ".join(d.attrs) or "none"
            raise ShapeError(f"{op}: unknown attribute {key!r} (attributes: {known})")
    for key, kind in d.attrs.items():
        if key not in out:
            raise ShapeError(f"{op}: missing attribute {key!r}")
        _check_attr(op, key, kind, out[key])
    return {key: out[key] for key in d.attrs}  # declaration order: one printed form per node


def _freeze(v):
    """Attributes are immutable and hashable: lists become tuples, numpy scalars Python ones."""
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if hasattr(v, "item") and not isinstance(v, DType):
        return v.item()
    return v


def get(op: str) -> OpDef:
    try:
        return OPS[op]
    except KeyError:
        raise ShapeError(f"unknown op {op!r}") from None


def infer_types(op: str, in_types: list[TensorType], attrs: dict[str, Any]) -> list[TensorType]:
    """Result types of ``op`` applied to ``in_types``; raises ShapeError on a mismatch."""
    d = get(op)
    if d.arity is not None and len(in_types) != d.arity:
        raise ShapeError(f"{op} takes {d.arity} operand(s), got {len(in_types)}")
    attrs = normalize_attrs(op, attrs)
    out = d.rule(in_types, **attrs)
    return list(out)


# -- helpers shared by the family rules --------------------------------------------------------
def same_dtype(op: str, types: list[TensorType]) -> DType:
    dtypes = {t.dtype for t in types}
    if len(dtypes) != 1:
        raise ShapeError(f"{op}: operands must have one dtype, got {', '.join(map(str, types))}")
    return types[0].dtype


def same_shape(op: str, types: list[TensorType]) -> tuple[int, ...]:
    shapes = {t.shape for t in types}
    if len(shapes) != 1:
        raise ShapeError(f"{op}: operands must have one shape, got {', '.join(map(str, types))}")
    return types[0].shape


def check_axis(op: str, axis: int, ndim: int) -> None:
    if not 0 <= axis < max(ndim, 1) and not (ndim == 0 and axis == 0):
        raise ShapeError(f"{op}: axis {axis} out of range for rank {ndim}")


from . import (  # noqa: E402,F401
    control,
    conv,
    elementwise,
    fused,
    linalg,
    random,
    reduce,
    remat,
    shape,
    sort,
    window,
)
