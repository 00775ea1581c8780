"""TensorBase: what the dispatcher needs of a tensor. The front end subclasses it with methods.

Note [Storage and aliasing]
A tensor's data lives in a Storage cell holding either a concrete jax array (eager) or an IR Value
(tracing). Tensors that PyTorch makes share memory without changing shape (``.data``,
``.detach()``) share the cell, so an in-place update through one is seen by the other. In-place
ops are functional underneath: they compute a new array and rebind the cell. Views that change
shape or select elements (view, transpose, slicing, ...) record their base; an in-place update of
such a view, or use of a view whose base was updated in place since, raises a GcompError rather
than giving an answer that differs from PyTorch's.

Note [Tape snapshots]
Autograd records, per op, *snapshots* of its inputs and outputs: fresh tensors holding the data as
it was then (arrays and IR values are immutable) and the autograd edge of the original. So a
later in-place update of an input neither corrupts the saved value nor the graph's structure, and
the reverse walk (core/autograd.py) only ever sees immutable snapshots.
"""

from __future__ import annotations

from ..ir.types import TensorType


class Storage:
    __slots__ = ("data", "version", "__weakref__")

    def __init__(self, data):
        self.data = data  # a jax array or an ir.Value
        self.version = 0


class TensorBase:
    # Only the storage, the type and requires_grad are set on every tensor; the rest are class
    # defaults that an instance overrides when it needs to (tensor creation is on the hot path).
    __slots__ = ("_storage", "_type", "requires_grad", "__weakref__", "__dict__")

    _grad = None
    _grad_fn = None  # the TapeNode that produced it (None for leaves)
    _out_index = 0
    _leaf = None  # in a snapshot: the leaf tensor it stands for
    _base = None  # for views: the tensor viewed, and its storage version then
    _base_version = 0
    _view_fn = None  # recomputes a view from its root (Note [Views] in frontend/shape_ops.py)
    _view_writable = True
    _strides = None  # a view's strides as PyTorch would lay it out (None: contiguous)
    _view_nograd = False  # a .data/.detach() alias of a view: writes through without autograd
    _name = None  # a state path, set by modules and optimizers
    _retains_grad = False
    _number = False  # eager: a constant made from a Python number (Note [Freeing the graph])

    def __init__(self, storage: Storage = None, type: TensorType = None,
                 requires_grad: bool = False, *sizes, device=None):
        if storage.__class__ is not Storage:  # torch.Tensor(2, 3): Note [Legacy constructors]
            from ..frontend.legacy import build
            from ..ir.types import float32

            args = [a for a in (storage, type) if a is not None]
            args += ([requires_grad] if requires_grad.__class__ is not bool else []) + list(sizes)
            self._storage, self._type = build(float32, tuple(args), device)
            self.requires_grad = False
            return
        self._storage = storage
        self._type = type
        self.requires_grad = requires_grad

    @property
    def _data(self):
        return self._storage.data

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    def _snapshot(self, data=None) -> TensorBase:
        """An immutable stand-in for the tape (Note [Tape snapshots])."""
        s = TensorBase.__new__(type(self))
        s._storage = Storage(self._storage.data if data is None else data)
        s._type = self._type
        s.requires_grad = self.requires_grad
        if self._grad_fn is not None:
            s._grad_fn = self._grad_fn
            s._out_index = self._out_index
        leaf = self._leaf if self._leaf is not None else (
            self if self._grad_fn is None and self.requires_grad else None)
        if leaf is not None:
            s._leaf = leaf
        if self._number:
            s._number = True
        return s

    def _edge(self):
        """The autograd identity of this tensor: the (node, output index) that made it, the leaf
        it accumulates into, or None when it needs no gradient."""
        if self._grad_fn is not None:
            return (self._grad_fn, self._out_index)
        if self.requires_grad:
            return self._leaf if self._leaf is not None else self
        return None
