"""torch.nn.utils.parametrize: a parameter or buffer computed from other tensors on every access.

``register_parametrization(m, "weight", p)`` moves ``m.weight`` to
``m.parametrizations.weight.original`` (``original0``, ``original1``, ... when ``p.right_inverse``
returns several tensors) and swaps ``m``'s class for a generated subclass whose ``weight`` property
returns ``p(original)``. The parametrized tensor is computed with gcomp ops each time it is read,
so it differentiates eagerly and, inside ``gcomp.compile``, becomes part of the traced graph (the
originals are the captured state that optimizers update).
"""

from __future__ import annotations

import copyreg
from collections.abc import Sequence
from contextlib import contextmanager
from copy import deepcopy

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core.dispatch import Mode, user_error

from ..functional._common import NNValueError
from ..modules.container import ModuleDict, ModuleList
from ..modules.module import Module
from ..parameter import Parameter

__all__ = ["cached", "ParametrizationList", "register_parametrization", "is_parametrized",
           "remove_parametrizations", "type_before_parametrizations",
           "transfer_parametrizations_and_params"]

_cache_enabled = 0
# (id(module), tensor name) -> (the interpreter that computed it, the tensor). A value computed
# eagerly is not reused inside a gcomp.compile trace, nor a traced one outside it.
_cache: dict[tuple[int, str], tuple[object, Tensor]] = {}


@contextmanager
def cached():
    """Inside this context each parametrized tensor is computed once, on its first read, and
    reused until the outermost ``cached()`` exits (for a weight read several times a forward)."""
    global _cache, _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache = {}


def _value_error(message: str) -> GcompError:
    return user_error(NNValueError, message)


def _register_parameter_or_buffer(module: Module, name: str, x: Tensor) -> None:
    if isinstance(x, Parameter):
        module.register_parameter(name, x)
    else:
        module.register_buffer(name, x)


def _maybe_set(dest: Tensor, src: Tensor) -> None:
    """Give ``dest`` the value of ``src`` keeping the object (optimizers hold it), as torch's
    ``set_``: an in-place write for the same shape and dtype."""
    if src is not dest:
        with gcomp.no_grad():
            dest.data = src.detach()


class ParametrizationList(ModuleList):
    """``module.parametrizations[tensor_name]``: the parametrizations of one tensor, applied in
    order, and the original tensor(s) they are computed from (``original``, or ``original0``,
    ``original1``, ... when the first ``right_inverse`` returns a sequence). Made by
    register_parametrization, not by users."""

    def __init__(self, modules: Sequence[Module], original: Tensor, unsafe: bool = False):
        if len(modules) == 0:
            raise _value_error("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape, original_dtype = tuple(original.shape), original.dtype

        # new = right_inverse(original), through the parametrizations in reverse order; one
        # without right_inverse (or raising NotImplementedError) counts as the identity
        with gcomp.no_grad():
            new = original
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass
        if not isinstance(new, (Tensor, Sequence)):
            raise _value_error("'right_inverse' must return a Tensor or a Sequence of tensors "
                               f"(list, tuple...). Got {type(new).__name__}")

        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if new.dtype != original.dtype:
                raise _value_error("When `right_inverse` outputs one tensor, it may not change the "
                                   f"dtype.\noriginal.dtype: {original.dtype}\n"
                                   f"right_inverse(original).dtype: {new.dtype}")
            if new.device != original.device:
                raise _value_error("When `right_inverse` outputs one tensor, it may not change the "
                                   f"device.\noriginal.device: {original.device}\n"
                                   f"right_inverse(original).device: {new.device}")
            # keep the original object, so an optimizer made before registering still updates it
            _maybe_set(original, new)
            _register_parameter_or_buffer(self, "original", original)
        else:
            for i, original_i in enumerate(new):
                if not isinstance(original_i, Tensor):
                    raise _value_error("'right_inverse' must return a Tensor or a Sequence of "
                                       f"tensors (list, tuple...). Got element {i} of the "
                                       f"sequence with type {type(original_i).__name__}.")
                # the caller adds these new tensors to its optimizer (as in torch)
                if isinstance(original, Parameter):
                    original_i = Parameter(original_i, original.requires_grad)
                elif original_i.requires_grad != original.requires_grad:
                    original_i = original_i.detach().requires_grad_(original.requires_grad)
                _register_parameter_or_buffer(self, f"original{i}", original_i)

        if not self.unsafe:
            # forward(right_inverse(original)) must live where original does
            z = self()
            if not isinstance(z, Tensor):
                raise _value_error(f"A parametrization must return a tensor. Got "
                                   f"{type(z).__name__}.")
            if z.dtype != original_dtype:
                raise _value_error("Registering a parametrization may not change the dtype of the "
                                   "tensor, unless `unsafe` flag is enabled.\n"
                                   f"unparametrized dtype: {original_dtype}\n"
                                   f"parametrized dtype: {z.dtype}")
            if tuple(z.shape) != original_shape:
                raise _value_error("Registering a parametrization may not change the shape of the "
                                   "tensor, unless `unsafe` flag is enabled.\n"
                                   f"unparametrized shape: {list(original_shape)}\n"
                                   f"parametrized shape: {list(z.shape)}")

    def right_inverse(self, value: Tensor) -> None:
        """Set the original tensor(s) to right_inverse(value), through the parametrizations in
        reverse order: what ``module.weight = value`` does."""
        with gcomp.no_grad():
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise user_error(GcompError, f"parametrization {type(module).__name__} does "
                                     "not implement right_inverse, so the parametrized tensor "
                                     "cannot be assigned; give it a right_inverse method or "
                                     "assign to parametrizations.<name>.original instead")
                value = module.right_inverse(value)
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise _value_error(f"`right_inverse` should return a tensor. Got "
                                       f"{type(value).__name__}")
                if value.dtype != self.original.dtype:
                    raise _value_error(f"The tensor returned by `right_inverse` has dtype "
                                       f"{value.dtype} while `original` has dtype "
                                       f"{self.original.dtype}")
                _maybe_set(self.original, value)
                return
            if not isinstance(value, Sequence):
                raise _value_error("'right_inverse' must return a sequence of tensors. Got "
                                   f"{type(value).__name__}.")
            if len(value) != self.ntensors:
                raise _value_error("'right_inverse' must return a sequence of tensors of length "
                                   f"{self.ntensors}. Got a sequence of length {len(value)}.")
            for i, tensor in enumerate(value):
                original_i = getattr(self, f"original{i}")
                if not isinstance(tensor, Tensor):
                    raise _value_error("'right_inverse' must return a sequence of tensors. Got "
                                       f"element {i} of type {type(tensor).__name__}.")
                if original_i.dtype != tensor.dtype:
                    raise _value_error(f"Tensor {i} returned by `right_inverse` has dtype "
                                       f"{tensor.dtype} while `original{i}` has dtype "
                                       f"{original_i.dtype}")
                _maybe_set(original_i, tensor)

    def forward(self) -> Tensor:
        if self.is_tensor:
            x = self[0](self.original)
        else:
            x = self[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        i = 1
        while str(i) in self._modules:
            x = self._modules[str(i)](x)
            i += 1
        return x


# -- the generated class ----------------------------------------------------------------------

def _default_deepcopy(self, memo):
    """copy.deepcopy of a parametrized module (pickling is refused, see _getstate)."""
    obj = memo.get(id(self))
    if obj is not None:
        return obj
    replica = self.__new__(self.__class__)
    memo[id(self)] = replica
    object.__setattr__(replica, "__dict__", deepcopy(self.__dict__, memo))
    for slot in copyreg._slotnames(self.__class__):
        if hasattr(self, slot):
            setattr(replica, slot, deepcopy(getattr(self, slot), memo))
    return replica


def _getstate(self):
    raise GcompError("Serialization of parametrized modules is only supported through "
                     "state_dict(): save module.state_dict(), and load it with load_state_dict() "
                     "into a module parametrized the same way")


def _parametrized_setattr(self, name, value):
    """Module.__setattr__, except that a parametrized name cannot become a parameter, buffer or
    submodule (its property would hide it); a plain tensor goes to its right_inverse."""
    from ..parameter import Buffer

    mods = self.__dict__.get("_modules", {})
    plists = mods.get("parametrizations")
    if isinstance(plists, ModuleDict) and name in plists and \
            isinstance(value, (Parameter, Buffer, Module)):
        raise user_error(GcompError, f"cannot assign a {type(value).__name__} to '{name}', which "
                         f"is parametrized: assign a plain tensor (module.{name} = t sets the "
                         "originals through right_inverse), or call "
                         f"remove_parametrizations(module, '{name}') first")
    Module.__setattr__(self, name, value)


def _inject_new_class(module: Module) -> None:
    """Swap the module's class for a subclass ``Parametrized<Name>`` that can hold properties."""
    cls = module.__class__
    dct = {"__getstate__": _getstate, "__setattr__": _parametrized_setattr}
    if not hasattr(cls, "__deepcopy__"):
        dct["__deepcopy__"] = _default_deepcopy
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), dct)


def _cached_value(module: Module, tensor_name: str, plist: ParametrizationList) -> Tensor:
    interp = Mode.stack[-1]
    key = (id(module), tensor_name)
    hit = _cache.get(key)
    if hit is not None and hit[0] is interp:
        return hit[1]
    tensor = plist()
    _cache[key] = (interp, tensor)
    return tensor


def _inject_property(module: Module, tensor_name: str) -> None:
    """``module.<tensor_name>``: the parametrizations applied to the originals, on each read."""
    if hasattr(module, tensor_name):
        raise GcompError(f"Module already has an attribute named '{tensor_name}'")

    def get_parametrized(self) -> Tensor:
        plist = self.parametrizations[tensor_name]
        try:
            if _cache_enabled:
                return _cached_value(self, tensor_name, plist)
            return plist()
        except AttributeError as e:  # not "no attribute <tensor_name>" via Module.__getattr__
            raise GcompError(f"computing the parametrized '{tensor_name}' of "
                             f"{type(self).__name__} raised AttributeError: {e}") from e

    def set_original(self, value: Tensor) -> None:
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


# -- the API ----------------------------------------------------------------------------------

def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` return ``parametrization(original)``. The parameter or
    buffer moves to ``module.parametrizations[tensor_name].original`` (set to
    ``parametrization.right_inverse(original)`` when it has one); registering again on the same
    name appends to the chain. ``unsafe=True`` allows a parametrization that changes the
    tensor's shape or dtype."""
    if not isinstance(module, Module):
        raise user_error(GcompError, f"register_parametrization: module must be an nn.Module, "
                         f"got {type(module).__name__}")
    if not isinstance(parametrization, Module):
        raise user_error(GcompError, "register_parametrization: the parametrization must be an "
                         f"nn.Module, got {type(parametrization).__name__}; wrap the function in "
                         "a Module whose forward computes the tensor (and, optionally, a "
                         "right_inverse)")
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            y = getattr(module, tensor_name)
            x = parametrization(y)
            if not isinstance(x, Tensor):
                raise _value_error(f"A parametrization must return a tensor. Got "
                                   f"{type(x).__name__}.")
            if x.dtype != y.dtype:
                raise _value_error("Registering a parametrization may not change the dtype of the "
                                   "tensor, unless the `unsafe` flag is enabled.\n"
                                   f"module.{tensor_name}.dtype: {y.dtype}\n"
                                   f"parametrization(module.{tensor_name}).dtype: {x.dtype}")
            if tuple(x.shape) != tuple(y.shape):
                raise _value_error("Registering a parametrization may not change the shape of the "
                                   "tensor, unless the `unsafe` flag is enabled.\n"
                                   f"module.{tensor_name}.shape: {list(y.shape)}\n"
                                   f"parametrization(module.{tensor_name}).shape: "
                                   f"{list(x.shape)}")
            if hasattr(parametrization, "right_inverse"):
                try:
                    z = parametrization.right_inverse(x)
                except NotImplementedError:
                    pass
                else:
                    if not isinstance(z, Tensor):
                        raise _value_error("parametrization.right_inverse must return a tensor. "
                                           f"Got: {type(z).__name__}")
                    if z.dtype != y.dtype or tuple(z.shape) != tuple(y.shape):
                        raise _value_error(
                            "The tensor returned by parametrization.right_inverse must have the "
                            f"same dtype and shape as module.{tensor_name}, unless the `unsafe` "
                            f"flag is enabled.\nmodule.{tensor_name}: {y.dtype} "
                            f"{list(y.shape)}\nreturned: {z.dtype} {list(z.shape)}")
        plist = module.parametrizations[tensor_name]
        plist.append(parametrization)
        plist.unsafe |= unsafe
        return module
    if tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        if original is None:
            raise _value_error(f"{type(module).__name__}.{tensor_name} is None, so there is no "
                               "tensor to parametrize; give the module that tensor first")
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = plist
        return module
    names = [n for n in list(module._parameters) + list(module._buffers)
             if getattr(module, n) is not None]
    names += list(module.parametrizations) if is_parametrized(module) else []
    what = f"parametrize one of {names}" if names else "it has no parameters or buffers"
    if isinstance(module.__dict__.get(tensor_name), Tensor):
        what = (f"'{tensor_name}' is a plain attribute; register it with register_buffer or "
                f"register_parameter first, or {what}")
    raise _value_error(f"Module '{type(module).__name__}' does not have a parameter, a buffer, "
                       f"or a parametrized element with name '{tensor_name}': {what}")


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module.<tensor_name>`` (any tensor of module, when None) is parametrized."""
    plists = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(plists, ModuleDict):
        return False
    return len(plists) > 0 if tensor_name is None else tensor_name in plists


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:
    """Undo register_parametrization on ``tensor_name``: the tensor becomes a parameter or
    buffer again, holding its current parametrized value (``leave_parametrized=True``, in the
    original object when there is one original) or the original itself. The module gets its
    own class back when nothing else of it is parametrized."""
    if not is_parametrized(module, tensor_name):
        now = list(module.parametrizations) if is_parametrized(module) else []
        raise _value_error(f"Module {type(module).__name__} does not have a parametrization on "
                           f"{tensor_name} (its parametrized tensors: {now}); register one with "
                           "register_parametrization first")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with gcomp.no_grad():
                t = getattr(module, tensor_name)
            if t.dtype != original.dtype:
                raise _value_error(f"the parametrized '{tensor_name}' has dtype {t.dtype} and its "
                                   f"original {original.dtype}; remove it with "
                                   "leave_parametrized=False")
            _maybe_set(original, t)
    else:
        if not leave_parametrized:
            raise _value_error("Cannot leave unparametrized (`leave_parametrized=False`) a tensor "
                               "that is parametrized in terms of a sequence of tensors.")
        t = getattr(module, tensor_name)
        original = Parameter(t.detach()) if t.requires_grad else t.detach()

    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module


def type_before_parametrizations(module: Module) -> type:
    """The module's class before register_parametrization swapped it."""
    return module.__class__.__bases__[0] if is_parametrized(module) else type(module)


def transfer_parametrizations_and_params(from_module: Module, to_module: Module,
                                         tensor_name: str | None = None) -> Module:
    """Register from_module's parametrizations (of tensor_name, or all) on to_module, sharing
    the parametrization modules and the original tensors."""
    if not is_parametrized(from_module):
        return to_module
    names = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
    for name in names:
        src = from_module.parametrizations[name]
        if not hasattr(to_module, name):
            setattr(to_module, name, Parameter(getattr(from_module, name).detach()))
        for p in src:
            register_parametrization(to_module, name, p)
        dst = to_module.parametrizations[name]
        if hasattr(src, "original"):
            dst.original = src.original
        else:
            i = 0
            while hasattr(src, f"original{i}"):
                setattr(dst, f"original{i}", getattr(src, f"original{i}"))
                i += 1
    return to_module
