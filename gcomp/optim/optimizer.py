"""Optimizer: PyTorch's param groups, state and state_dict, with the update compiled once.

Note [The compiled optimizer step]
``step()`` runs the update of every parameter as one call of a function compiled with
``gcomp.compile``: an eager gcomp op costs about 10 µs and a compiled call about as much as a
few ops, so one call instead of ~10 ops per parameter is what makes an eager training loop fast.
The update function reads parameters, state and hyperparameters from the optimizer and updates
them in place under ``no_grad``; gcomp.compile captures what it touches as state and writes the
new values back. Called inside an outer ``gcomp.compile`` (a whole training step), the compiled
function is inlined, so the same arithmetic lands in the outer graph.

What is baked into the traced program, and what is not:
- The gradients are *arguments*, one per parameter, None where a parameter has no gradient (it
  is skipped, as in torch). So which gradients exist is part of the cache key, and a new
  gradient tensor each step (``zero_grad(set_to_none=True)``) is just a new argument.
- ``lr`` (and ``momentum``/``betas``, which OneCycleLR cycles) are 0-d tensors held by the param
  group (``ParamGroup.tensors``), captured as state. Setting ``group['lr'] = x`` updates that
  tensor, so a scheduler never causes a recompile. ``step`` is a float32 0-d tensor per parameter.
- Every other hyperparameter (eps, weight_decay, nesterov, ...) is a Python constant of the
  trace. The tuple of them, per group, is interned to a small integer passed as the first
  argument, so changing one compiles a new program instead of silently using the old value.
- Optimizer state is created before the update runs (``_init_state``), as real tensors even
  while an outer trace runs (``concrete_full``), so it outlives the trace and is captured.

Inside an outer compiled function the configuration is read once, when that function is traced,
and the outer function's cache key does not include it: changing eps or weight_decay after it
has compiled has no effect there (changing lr, momentum or betas does). Anything that changes
from step to step on its own must therefore be a tensor, like SGD's first-update flag.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from itertools import chain

import numpy as np

import gcomp
from gcomp import GcompError, Tensor
from gcomp.frontend.creation import concrete_full

__all__ = ["Optimizer", "ParamGroup"]


def _set_value(t: Tensor, value: float) -> None:
    """Give the 0-d tensor ``t`` a new value now, keeping its identity (captured state)."""
    t._storage.data = concrete_full((), value, t.dtype)._storage.data
    t._storage.version += 1


_DEFAULT_DEVICE: list = []


def _default_device():
    if not _DEFAULT_DEVICE:
        _DEFAULT_DEVICE.append(concrete_full((), 0.0, gcomp.float32).device)
    return _DEFAULT_DEVICE[0]


def _number(v):
    if isinstance(v, Tensor) or hasattr(v, "item"):
        return float(v.item() if hasattr(v, "item") else v)
    return v


class ParamGroup(dict):
    """One parameter group: a dict with PyTorch's keys. The keys the compiled update reads as
    tensors (``tensor_keys``: name -> dtype) also live in ``self.tensors``; setting such a key
    updates its tensor in place (Note [The compiled optimizer step])."""

    def __init__(self, data, tensor_keys):
        super().__init__(data)
        self._tensor_keys = tensor_keys
        self.tensors: dict[str, Tensor] = {}
        for key in tensor_keys:
            if key in self:
                self._sync(key)

    def __setitem__(self, key, value):
        if key in self._tensor_keys:
            value = tuple(_number(v) for v in value) if key == "betas" else _number(value)
            super().__setitem__(key, value)
            self._sync(key)
        else:
            super().__setitem__(key, value)

    def update(self, *args, **kwargs):
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def _sync(self, key):
        value = dict.__getitem__(self, key)
        dtype = self._tensor_keys[key]
        items = ([(f"{key}.{i}", v) for i, v in enumerate(value)] if key == "betas"
                 else [(key, value)])
        for name, v in items:
            t = self.tensors.get(name)
            if t is None:
                self.tensors[name] = concrete_full((), float(v), dtype)
            else:
                _set_value(t, float(v))

    def __reduce__(self):  # copies and pickles are plain dicts, as torch's groups are
        return (dict, (dict(self),))


class Optimizer:
    """Base class of optimizers (torch.optim.Optimizer).

    Subclasses give ``defaults``, ``_tensor_keys`` (the group keys held as tensors), and
    ``_init_state``, ``_group_config`` and ``_update_group`` (see Note [The compiled optimizer
    step]).
    """

    _tensor_keys: dict = {"lr": gcomp.float32}
    # per-parameter state entries that are float32 0-d tensors (not shaped like the parameter)
    _scalar_state: tuple = ("step",)

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[ParamGroup] = []
        self._opt_called = False
        if isinstance(params, Tensor):
            raise GcompError("params argument given to the optimizer should be an iterable of "
                             "Tensors or dicts, but got a gcomp.Tensor; pass [tensor] or "
                             "model.parameters()")
        groups = list(params)
        if not groups:
            raise GcompError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        self._configs: dict = {}  # config tuple -> its id
        self._config_list: list = []
        self._compiled = self._make_update()

    # -- param groups -------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        if not isinstance(param_group, dict):
            raise GcompError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise GcompError("optimizer parameters need to be organized in ordered collections, "
                             "but the ordering of tensors in sets will change between runs; use "
                             "a list")
        else:
            params = list(params)
        if params and isinstance(params[0], tuple):  # named_parameters()
            group["param_names"] = [n for n, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise GcompError("optimizer can only optimize Tensors, but one of the params is "
                                 f"{type(p).__name__}")
            if not p.is_leaf:
                raise GcompError("can't optimize a non-leaf Tensor; optimize the leaf it was "
                                 "computed from, or .detach().requires_grad_() a copy")
        if len({id(p) for p in params}) != len(params):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in "
                          "future, this will cause an error", UserWarning, stacklevel=3)
            seen: set = set()
            params = [p for p in params if not (id(p) in seen or seen.add(id(p)))]
        group["params"] = params
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise GcompError("some parameters appear in more than one parameter group")
        self.param_groups.append(ParamGroup(group, self._tensor_keys))

    # -- the step -----------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None  # without reading it first: no .grad guard in a compiled step
                    continue
                g = p.grad
                if g is None:
                    continue
                else:
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g.requires_grad_(False)
                    g.zero_()

    def step(self, closure=None):
        """One update of every parameter that has a gradient, as one compiled call."""
        loss = None
        if closure is not None:
            with gcomp.enable_grad():
                loss = closure()
        self._opt_called = True
        grads = []
        state = self.state
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is not None and not state.get(p):
                    self._init_state(p, group)
                grads.append(g)
        config = tuple(self._group_config(group) for group in self.param_groups)
        cid = self._configs.get(config)
        if cid is None:
            cid = self._configs[config] = len(self._config_list)
            self._config_list.append(config)
        with gcomp.no_grad():
            self._compiled(cid, *grads)
        return loss

    def _make_update(self):
        # the tracer names captured state after these variables: optimizer.state.0.exp_avg, ...
        optimizer, param = self, _ParamNames(self)

        def update(config_id, *grads):
            _ = param  # keeps it in the closure, where the tracer looks for names
            optimizer._update_all(optimizer._config_list[config_id], grads)

        name = f"{type(self).__name__}_step"
        update.__name__ = update.__qualname__ = name
        return gcomp.compile(update, name=name)

    def _update_all(self, configs, grads) -> None:
        with gcomp.no_grad():
            i = 0
            for group, config in zip(self.param_groups, configs, strict=True):
                params = group["params"]
                pairs = [(p, g) for p, g in zip(params, grads[i:i + len(params)], strict=True)
                         if g is not None]
                i += len(params)
                if pairs:
                    self._update_group(group, config, pairs)

    def _new_state(self, p: Tensor, fill=0.0, dtype=None, shape=None) -> Tensor:
        """A state tensor shaped like ``p`` (or ``shape``), real even while a trace runs."""
        device = None if p.is_traced else p.device
        if device == _default_device():
            device = None  # placed like the parameter: uncommitted, on the default device
        return concrete_full(p.shape if shape is None else tuple(shape), fill,
                             dtype or p.dtype, device)

    @staticmethod
    def _new_step() -> Tensor:
        return concrete_full((), 0.0, gcomp.float32)

    # subclasses:
    def _init_state(self, p: Tensor, group: dict) -> None:
        """Create the state of a parameter the first time it has a gradient."""

    def _group_config(self, group: dict) -> tuple:
        """The hyperparameters the traced update bakes in as constants (hashable)."""
        return ()

    def _update_group(self, group, config, pairs) -> None:
        raise NotImplementedError

    # -- state --------------------------------------------------------------------------------
    def _param_index(self) -> dict:
        index: dict = {}
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
        return index

    def state_names(self):
        """(name, tensor) for every state tensor: ``state.<param index>.<key>`` and
        ``param_groups.<group index>.lr`` (names of captured state in traced graphs)."""
        index = self._param_index()
        for p, st in self.state.items():
            i = index.get(id(p))
            if i is None:
                continue
            for k, v in st.items():
                if isinstance(v, Tensor):
                    yield f"state.{i}.{k}", v
        for gi, group in enumerate(self.param_groups):
            for k, t in group.tensors.items():
                yield f"param_groups.{gi}.{k}", t

    def state_dict(self) -> dict:
        """PyTorch's format: ``state`` keyed by parameter index, ``param_groups`` with
        ``params`` as index lists. State tensors are the optimizer's own (not copies)."""
        index = self._param_index()
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(st) for p, st in self.state.items()
                 if st and id(p) in index}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict from ``state_dict()``, from gcomp.load_state, or from torch (tensors
        as numpy arrays, gcomp tensors or anything numpy can read). Everything is checked and
        converted before anything is written."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise GcompError("loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than the optimizer "
                             f"({len(self.param_groups)})")
        for i, (g, s) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            if len(g["params"]) != len(s["params"]):
                raise GcompError(f"loaded state dict's parameter group {i} has "
                                 f"{len(s['params'])} parameters, the optimizer's has "
                                 f"{len(g['params'])}")
        id_map = dict(zip(chain.from_iterable(_ids(s["params"]) for s in saved_groups),
                          chain.from_iterable(g["params"] for g in self.param_groups),
                          strict=True))
        new_state: dict = {}
        for k, st in state_dict["state"].items():
            key = int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k
            if key not in id_map:
                continue
            p = id_map[key]
            new_state[p] = {name: self._load_value(p, key, name, v) for name, v in st.items()}
        # write: into the existing tensors where the layout is unchanged (the compiled update
        # keeps reading them); otherwise install new tensors and recompile the update
        same = set(new_state) == {p for p, st in self.state.items() if st} and all(
            set(st) == set(self.state[p]) and all(
                not isinstance(v, Tensor) or (isinstance(self.state[p][k], Tensor)
                                              and self.state[p][k]._type == v._type)
                for k, v in st.items())
            for p, st in new_state.items())
        if same:
            for p, st in new_state.items():
                for k, v in st.items():
                    old = self.state[p][k]
                    if isinstance(v, Tensor):
                        old._storage.data = v._storage.data
                        old._storage.version += 1
                    else:
                        self.state[p][k] = v
        else:
            self.state = defaultdict(dict, new_state)
            self._compiled.cache_clear()
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            for k, v in saved.items():
                if k != "params":
                    group[k] = tuple(v) if k == "betas" else v

    def _state_shape(self, p: Tensor, name: str) -> tuple:
        """The shape of the state tensor ``name`` of parameter ``p`` (``p``'s by default)."""
        return tuple(p.shape)

    def _load_value(self, p: Tensor, index, name: str, value):
        if isinstance(value, (bool, int, float)) and name not in self._scalar_state:
            return value
        try:
            arr = np.asarray(value.detach() if isinstance(value, Tensor) else value)
        except Exception as e:  # noqa: BLE001 - any unreadable value
            raise GcompError(f"optimizer state {index}.{name}: cannot read a "
                             f"{type(value).__name__} as an array ({e})") from None
        if name in self._scalar_state:
            if arr.size != 1:
                raise GcompError(f"optimizer state {index}.{name} should hold one number, got "
                                 f"shape {list(arr.shape)}")
            return gcomp.tensor(arr.reshape(()), dtype=gcomp.float32)
        expected = self._state_shape(p, name)
        if arr.shape != expected:
            raise GcompError(f"optimizer state {index}.{name} has shape {list(arr.shape)}, but "
                             f"it should have shape {list(expected)} (parameter {index} has "
                             f"shape {list(p.shape)})")
        dtype = p.dtype if p.dtype.is_floating_point else None
        return gcomp.tensor(arr, dtype=dtype)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        lines.append(")")
        return "\n".join(lines)


class _ParamNames:
    """Names the parameters in the compiled update's graph: param.0, param.1, ..."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def state_names(self):
        for i, p in enumerate(p for g in self.optimizer.param_groups for p in g["params"]):
            yield str(i), p


def _ids(params):
    return [int(i) if not isinstance(i, int) else i for i in params]
