"""nn.Module: parameters, buffers and submodules, registered by assignment, with PyTorch's names.

Parameters and buffers carry their state path (``model.0.weight``) once a module is named by an
enclosing one, so traced graphs name their state inputs the way a state_dict does.
"""

from __future__ import annotations

import functools
from collections import OrderedDict, namedtuple
from collections.abc import Iterator

import numpy as np

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core.dispatch import Mode, TraceInterpreter, user_error

from ..parameter import Buffer, Parameter
from . import hooks as _hooks


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns; prints as torch's does when every key matched."""

    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class Module:
    """Base class of every layer and model (torch.nn.Module)."""

    training: bool
    _version = 1
    # Note [Module structure guards]
    # ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    # A compiled function reads a module's parameters and buffers as captured state: the
    # tensor objects it found while tracing. Replacing one afterwards (``m.fc = nn.Linear(..)``,
    # ``m.weight = Parameter(..)``, a parametrization, a deleted buffer) would leave the
    # executable reading the old tensor, silently. So ``_struct`` counts such changes per
    # module, and every module the trace called is guarded on its count (as on its .training),
    # with the recompile reason naming the module. A module whose tensors are read without
    # calling it (``x @ m.weight``) is not guarded this way. Assigning a buffer inside the
    # compiled function (``self.n = self.n + 1``) updates the buffer object in place instead,
    # so it is written back after every call, as torch.compile does.
    _struct = 0

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise GcompError(f"{type(self).__name__}.__init__() got unexpected arguments; call "
                             "super().__init__() with none")
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    # -- registration -------------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            if isinstance(value, (Parameter, Module)):
                raise GcompError(f"cannot assign {type(value).__name__} before "
                                 "Module.__init__() call")
            object.__setattr__(self, name, value)
            return
        params, bufs, mods = self._parameters, self._buffers, self._modules
        if name in params or name in bufs or name in mods or \
                isinstance(value, (Parameter, Module, Buffer)):
            self.__dict__["_struct"] = self._struct + 1
        if isinstance(value, Parameter):
            self.__dict__.pop(name, None)
            bufs.pop(name, None)
            mods.pop(name, None)
            self.register_parameter(name, value)
        elif name in params:
            if value is not None:
                raise GcompError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                 "(gcomp.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self.__dict__.pop(name, None)
            params.pop(name, None)
            bufs.pop(name, None)
            mods[name] = value
        elif name in mods:
            if value is not None:
                raise GcompError(f"cannot assign '{type(value).__name__}' as child module "
                                 f"'{name}' (gcomp.nn.Module or None expected)")
            mods[name] = None
        elif name in bufs and type(value) is Tensor and bufs[name] is not None and \
                type(Mode.stack[-1]) is TraceInterpreter:
            _assign_traced_buffer(self, name, bufs[name], value)
        elif isinstance(value, Buffer) or (name in bufs and (value is None or
                                                             isinstance(value, Tensor))):
            persistent = getattr(value, "persistent", name not in self._non_persistent_buffers)
            self.register_buffer(name, value, persistent=persistent)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                self.__dict__["_struct"] = self._struct + 1
                del table[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name: str, param) -> None:
        _check_name(self, name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise GcompError(f"cannot assign '{type(param).__name__}' object to parameter "
                             f"'{name}' (gcomp.nn.Parameter or None required)")
        self.__dict__["_struct"] = self._struct + 1
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        _check_name(self, name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise GcompError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                             "(gcomp.Tensor or None required)")
        if isinstance(tensor, Buffer):
            tensor = Tensor(tensor._storage, tensor._type)
        self.__dict__["_struct"] = self._struct + 1
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module) -> None:
        if module is not None and not isinstance(module, Module):
            raise GcompError(f"{type(module).__name__} is not a Module subclass")
        _check_name(self, name, "module", allow_dots=False)
        self.__dict__["_struct"] = self._struct + 1
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        mod = self
        for part in target.split(".") if target else []:
            if part not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r}")
            mod = mod._modules[part]
        return mod

    def get_parameter(self, target: str):
        mod, _, name = target.rpartition(".")
        return getattr(self.get_submodule(mod), name)

    # -- calling ------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise GcompError(f"Module [{type(self).__name__}] is missing the required \"forward\" "
                         "function")

    def compile(self, *args, **kwargs) -> None:
        """Compile this module's forward in place (torch's Module.compile): calls of the module
        run ``gcomp.compile(self, *args, **kwargs)``; its parameters and everything else stay
        as they are."""
        compiled = gcomp.compile(self, *args, **kwargs)
        object.__setattr__(self, "_compiled_call", compiled)

    def __call__(self, *args, **kwargs):
        interp = Mode.stack[-1]
        compiled = self.__dict__.get("_compiled_call")
        if compiled is not None and len(Mode.stack) == 1:  # inside its trace: the plain call
            return compiled(*args, **kwargs)
        if type(interp) is TraceInterpreter:
            interp.note_mode(self)  # train()/eval() is part of a compiled function's guards
        for hook in self._forward_pre_hooks.values():
            res = hook(self, args)
            if res is not None:
                args = res if isinstance(res, tuple) else (res,)
        backward_hooks = _hooks.wants_backward_hooks(self)
        if backward_hooks:
            state: dict = {}
            args = _hooks.setup_inputs(self, args, state)
        out = self.forward(*args, **kwargs)
        for hook in self._forward_hooks.values():
            res = hook(self, args, out)
            if res is not None:
                out = res
        if backward_hooks:
            out = _hooks.setup_outputs(self, out, state)
        return out

    def register_forward_hook(self, hook):
        return _Handle(self._forward_hooks, hook)

    def register_full_backward_hook(self, hook):
        """``hook(module, grad_input, grad_output)`` runs when the gradients with respect to
        the module's positional tensor inputs are computed; it may return a new grad_input
        (nn/modules/hooks.py)."""
        if "_backward_hooks" not in self.__dict__:
            object.__setattr__(self, "_backward_hooks", OrderedDict())
        return _Handle(self._backward_hooks, hook)

    def register_full_backward_pre_hook(self, hook):
        """``hook(module, grad_output)`` runs when the gradients with respect to the module's
        outputs are computed; it may return a new grad_output."""
        if "_backward_pre_hooks" not in self.__dict__:
            object.__setattr__(self, "_backward_pre_hooks", OrderedDict())
        if "_backward_hooks" not in self.__dict__:
            object.__setattr__(self, "_backward_hooks", OrderedDict())
        return _Handle(self._backward_pre_hooks, hook)

    def register_forward_pre_hook(self, hook):
        return _Handle(self._forward_pre_hooks, hook)

    def _register_load_state_dict_pre_hook(self, hook, with_module: bool = False):
        """torch's private hook: ``hook(state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` runs before load_state_dict matches keys and may rename
        or convert entries of its copy of the state_dict (parametrizations.weight_norm loads
        the legacy ``weight_g``/``weight_v`` keys so)."""
        if "_load_state_dict_pre_hooks" not in self.__dict__:
            object.__setattr__(self, "_load_state_dict_pre_hooks", OrderedDict())
        if with_module:
            hook = functools.partial(hook, self)
        return _Handle(self._load_state_dict_pre_hooks, hook)

    # -- iteration ----------------------------------------------------------------------------
    def _named_members(self, get, prefix="", recurse=True, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for mod_prefix, mod in mods:
            for k, v in get(mod):
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield (mod_prefix + ("." if mod_prefix else "") + k), v

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        yield from self._named_members(lambda m: m._parameters.items(), prefix, recurse,
                                       remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members(lambda m: m._buffers.items(), prefix, recurse,
                                       remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        memo = set() if memo is None else memo
        if remove_duplicate and id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name,
                                       remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    # -- state --------------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """Parameters and persistent buffers by dotted name; tensors share storage (detached)."""
        out = OrderedDict() if destination is None else destination
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                out[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy values in (tensors, numpy arrays, or anything with .numpy()/__array__). Every key
        and shape is checked before anything is written, so a failed load changes nothing."""
        state_dict, hook_missing, problems = _run_load_state_dict_pre_hooks(self, state_dict,
                                                                            strict)
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict] + hook_missing
        unexpected = [k for k in state_dict if k not in own]
        converted = {}
        for k, target in own.items():
            if k not in state_dict:
                continue
            value = _as_array(state_dict[k])
            if tuple(value.shape) != tuple(target.shape):
                problems.append(f"size mismatch for {k}: copying a param with shape "
                                f"{list(value.shape)} from checkpoint, the shape in current model "
                                f"is {list(target.shape)}.")
            converted[k] = value
        if strict and (missing or unexpected):
            if missing:
                problems.insert(0, "Missing key(s) in state_dict: " +
                                ", ".join(f'"{k}"' for k in missing) + ".")
            if unexpected:
                problems.insert(0, "Unexpected key(s) in state_dict: " +
                                ", ".join(f'"{k}"' for k in unexpected) + ".")
        if problems:
            raise GcompError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" +
                             "\n\t".join(problems))
        with gcomp.no_grad():
            for k, value in converted.items():
                target = own[k]
                new = gcomp.tensor(np.asarray(value), dtype=target.dtype)
                target._storage.data = new._storage.data
                target._storage.version += 1
        return IncompatibleKeys(missing, unexpected)

    # -- modes and conversions ----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise GcompError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None  # without reading it first: no .grad guard in a compiled step
            elif p.grad is not None:
                p.grad.zero_()

    def apply(self, fn) -> Module:
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _convert(self, fn) -> Module:
        """Replace every parameter's and buffer's data with fn(tensor), keeping the objects.

        A move that keeps the type rebinds the array in the tensor's own storage, so everything
        holding the tensor (an optimizer, a compiled step's captured state, state_dict() entries)
        sees it on the new device; a new dtype gets a new storage."""
        for m in self.modules():
            for table in (m._parameters, m._buffers):
                for t in table.values():
                    if t is None:
                        continue
                    new = fn(t.detach())
                    if new is t or new._storage is t._storage:
                        continue
                    if new._type == t._type:
                        t._storage.data = new._storage.data
                        t._storage.version += 1
                    else:
                        t._storage = type(t._storage)(new._storage.data)
                        t._type = new._type
                    if t._grad is not None:
                        g = fn(t._grad)
                        t._grad = g
        return self

    def to(self, *args, **kwargs) -> Module:
        """to(device), to(dtype), to(device, dtype), to(tensor): in place, keeping each Parameter
        object (optimizers made before still hold them); only floating point tensors change
        dtype."""
        dtype = kwargs.get("dtype")
        device = kwargs.get("device")
        for a in args:
            if isinstance(a, bool):
                continue  # non_blocking
            if isinstance(a, gcomp.DType):
                dtype = a
            elif isinstance(a, (str, int, gcomp.device)):
                device = a
            elif isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif a is not None:
                raise user_error(GcompError, f"Module.to(): unexpected argument {a!r}; expected "
                                 "a device, a dtype or a tensor")

        def fn(t):
            out = t
            if device is not None:
                out = out.to(device)
            if dtype is not None and out.dtype.is_floating_point and dtype.is_floating_point:
                out = out.to(dtype)
            return out

        return self._convert(fn)

    def float(self) -> Module:
        return self.to(gcomp.float32)

    def double(self) -> Module:
        return self.to(gcomp.float64)

    def half(self) -> Module:
        return self.to(gcomp.float16)

    def bfloat16(self) -> Module:
        return self.to(gcomp.bfloat16)

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device=None) -> Module:
        return self.to("cuda" if device is None else
                       f"cuda:{device}" if isinstance(device, int) else device)

    def type(self, dst_type) -> Module:
        return self.to(dst_type)

    # -- printing -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        main = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


class _Handle:
    _next = 0

    def __init__(self, table, hook):
        _Handle._next += 1
        self.id = _Handle._next
        self.table = table
        table[self.id] = hook

    def remove(self):
        self.table.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _assign_traced_buffer(module, name, old, value) -> None:
    """``self.buf = new`` inside gcomp.compile: the buffer object takes the new value in place,
    so the compiled function writes it back after each call (as for ``self.buf.copy_(new)``),
    instead of the module keeping a traced tensor (Note [Module structure guards])."""
    if old._type != value._type:
        raise user_error(GcompError, f"{type(module).__name__}.{name} = ... inside gcomp.compile "
                         f"changes the buffer from {old._type} to {value._type}; a compiled "
                         "function can update a buffer but not change its shape or dtype "
                         "(assign it outside the compiled function, or keep its shape)")
    old.copy_(value)


def _run_load_state_dict_pre_hooks(module, state_dict, strict):
    """Every submodule's load_state_dict pre-hooks, parents first, on a copy of state_dict;
    returns it with the missing keys and errors the hooks reported."""
    missing: list = []
    errors: list = []
    hooked = [(p, m) for p, m in module.named_modules()
              if m.__dict__.get("_load_state_dict_pre_hooks")]
    if hooked:
        metadata = getattr(state_dict, "_metadata", None) or {}
        state_dict = OrderedDict(state_dict)
        for prefix, m in hooked:
            for hook in list(m._load_state_dict_pre_hooks.values()):
                hook(state_dict, prefix + "." if prefix else "", metadata.get(prefix, {}), strict,
                     missing, [], errors)
    return state_dict, missing, errors


def _check_name(module, name, what, allow_dots=False):
    if not isinstance(name, str):
        raise GcompError(f"{what} name should be a string, got {type(name).__name__}")
    if not name or (not allow_dots and "." in name):
        raise GcompError(f"{what} name can't be empty or contain \".\", got {name!r}")
    if hasattr(type(module), name) and not isinstance(getattr(type(module), name, None),
                                                      property):
        raise GcompError(f"attribute '{name}' already exists")


def _as_array(value):
    if isinstance(value, Tensor):
        return np.asarray(value.detach())
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)
