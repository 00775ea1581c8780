"""DType and TensorType, with PyTorch's type promotion and broadcasting rules in one place."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ShapeError


@dataclass(frozen=True, slots=True, eq=False)
class DType:
    """A dtype. Each is a module-level singleton, compared and hashed by identity."""

    name: str  # PyTorch's name: "float32"
    short: str  # the IR's name: "f32"
    kind: str  # "b" bool, "u" unsigned, "i" signed int, "f" float
    bits: int

    def __repr__(self) -> str:
        return f"gcomp.{self.name}"

    __str__ = __repr__

    def __reduce__(self):
        return (dtype_from_name, (self.name,))

    @property
    def is_floating_point(self) -> bool:
        return self.kind == "f"

    @property
    def is_integer(self) -> bool:
        return self.kind in "ui"

    @property
    def itemsize(self) -> int:
        return max(1, self.bits // 8)


bool_ = DType("bool", "bool", "b", 8)
uint8 = DType("uint8", "u8", "u", 8)
uint32 = DType("uint32", "u32", "u", 32)
int8 = DType("int8", "i8", "i", 8)
int16 = DType("int16", "i16", "i", 16)
int32 = DType("int32", "i32", "i", 32)
int64 = DType("int64", "i64", "i", 64)
float16 = DType("float16", "f16", "f", 16)
bfloat16 = DType("bfloat16", "bf16", "f", 16)
float32 = DType("float32", "f32", "f", 32)
float64 = DType("float64", "f64", "f", 64)

ALL_DTYPES = (bool_, uint8, uint32, int8, int16, int32, int64, float16, bfloat16, float32,
              float64)
_BY_NAME = {d.name: d for d in ALL_DTYPES} | {d.short: d for d in ALL_DTYPES}
_BY_NAME |= {"float": float32, "double": float64, "half": float16, "long": int64, "int": int32,
             "short": int16}

DEFAULT_FLOAT = float32
DEFAULT_INT = int64


def dtype_from_name(name: str) -> DType:
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(d.short for d in ALL_DTYPES)
        raise ShapeError(f"unknown dtype {name!r}; known dtypes: {known}") from None


# ---------------------------------------------------------------------------------------------
# Promotion, following c10's promoteTypes and at::native::result_type.

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def promote_types(a: DType, b: DType) -> DType:
    """The smallest dtype both a and b convert to without losing their category
    (torch.promote_types)."""
    if a == b:
        return a
    ca, cb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if ca != cb:
        return a if ca > cb else b
    if a.kind == "f":
        if {a, b} == {float16, bfloat16}:
            return float32
        return a if a.bits > b.bits else b
    if a.kind == "b":
        return a
    # integers: signed wins over unsigned of the same or smaller width
    if a.kind == b.kind:
        return a if a.bits > b.bits else b
    signed, unsigned = (a, b) if a.kind == "i" else (b, a)
    if signed.bits > unsigned.bits:
        return signed
    # the narrowest signed type wider than the unsigned one: int8 with uint8 is int16
    return next(d for d in (int16, int32, int64) if d.bits > unsigned.bits or d is int64)


def _combine_categories(higher: DType | None, lower: DType | None) -> DType | None:
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> DType:
    """PyTorch's result_type. Each operand is ``(dtype, ndim)`` for a tensor or a Python scalar.

    Dimensioned tensors decide the dtype; zero-dim tensors and Python scalars only raise the
    category (so ``int32_tensor + 2.5`` is float32, ``f16_tensor + f32_zero_dim`` is float16).
    """
    dim_result = zero_result = wrapped_result = None
    for op in operands:
        if isinstance(op, bool):
            wrapped_result = _promote_opt(wrapped_result, bool_)
        elif isinstance(op, int):
            wrapped_result = _promote_opt(wrapped_result, DEFAULT_INT)
        elif isinstance(op, float):
            wrapped_result = _promote_opt(wrapped_result, DEFAULT_FLOAT)
        else:
            dtype, ndim = op
            if ndim > 0:
                dim_result = _promote_opt(dim_result, dtype)
            else:
                zero_result = _promote_opt(zero_result, dtype)
    out = _combine_categories(dim_result, _combine_categories(zero_result, wrapped_result))
    if out is None:
        raise ShapeError("result_type needs at least one operand")
    return out


def _promote_opt(a: DType | None, b: DType) -> DType:
    return b if a is None else promote_types(a, b)


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy/PyTorch broadcasting: align trailing dims; a dim of 1 stretches."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for i, d in enumerate(s, start=ndim - len(s)):
            if d == out[i] or d == 1:
                continue
            if out[i] == 1:
                out[i] = d
            else:
                pretty = " and ".join(str(list(x)) for x in shapes)
                raise ShapeError(f"shapes {pretty} cannot be broadcast together (dim {i})")
    return tuple(out)


@dataclass(frozen=True, slots=True, eq=False)
class TensorType:
    shape: tuple[int, ...]
    dtype: DType
    _hash: int = 0

    def __post_init__(self):
        shape = tuple(int(d) for d in self.shape)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "_hash", hash((shape, self.dtype.name)))

    def __eq__(self, other) -> bool:
        return self is other or (isinstance(other, TensorType) and self._hash == other._hash
                                 and self.shape == other.shape and self.dtype is other.dtype)

    def __hash__(self) -> int:
        return self._hash

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __str__(self) -> str:
        return f"{self.dtype.short}[{','.join(map(str, self.shape))}]"

    __repr__ = __str__
