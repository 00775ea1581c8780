"""Data-parallel (and model-parallel) compiled steps over a mesh of jax devices.

    mesh = gcomp.distributed.Mesh(("data",))          # every device, on one axis
    step = gcomp.compile(train_step, mesh=mesh)       # batch split, state replicated

Note [Data parallel]
~~~~~~~~~~~~~~~~~~~~
``gcomp.compile(step, mesh=mesh)`` compiles the same graph as without a mesh; only the jit
changes. Each graph input gets a ``NamedSharding`` over the mesh: a tensor argument is split
along its first dimension over the mesh's first axis (a 0-d argument is replicated), and captured
state (parameters, buffers, optimizer state, the RNG key) is replicated. The state updates the
executable returns are given the sharding of the state they replace, so written-back state stays
on the mesh and the next call transfers nothing; the user's outputs (the loss) get what XLA's
SPMD partitioner chooses. XLA then partitions the one program: each device computes its slice
of the batch, and the partitioner inserts the all-reduce where the replicated parameters' update
needs the sum over the batch (the gradient), so the step computes what the one-device step does.

``shardings=`` overrides the placement of an argument (by position or name) or of state (by its
path in the IR, ``0.weight`` or ``opt.state.0.exp_avg``, or a glob such as ``*.weight``) with a
PartitionSpec-like tuple, one entry per leading dimension: an axis name, a tuple of axis names,
or None (not split). ``(None, "model")`` splits a weight's columns over the ``model`` axis: a
model-parallel layout is just another sharding, with no other code. An empty tuple or None
replicates.

Placement is checked when a signature compiles (the user's call line): every split dimension
must be divisible by the number of devices it is split over, and every key of ``shardings=``
must name an argument or state. At run time, inputs that jax moves implicitly (uncommitted
arrays: Note [Devices and committed arrays] in frontend/device.py) need nothing; an input
committed elsewhere (a module moved with ``.to``, state from a call without the mesh) makes jit
refuse, and the call then moves exactly those inputs onto the mesh and runs again (only the
first call after such a move pays for it).
"""

from __future__ import annotations

import fnmatch
import math

import jax
import numpy as np

from .core.dispatch import user_error
from .frontend.device import device as Device
from .frontend.device import is_device_mismatch, name_of_jax
from .ir.errors import GcompError

__all__ = ["Mesh", "devices", "from_local", "local_devices", "process_count", "process_index"]


def devices() -> list:
    """Every device of the default platform across all processes (after
    ``jax.distributed.initialize``), as jax devices: the default devices of a Mesh. (A
    ``gcomp.device`` names a device of this process, as torch's ``cuda:N`` does.)"""
    return list(jax.devices())


def local_devices() -> list:
    """This process's devices, as jax devices; ``gcomp.device("cpu:N")`` is the N-th."""
    return list(jax.local_devices())


def process_index() -> int:
    return jax.process_index()


def process_count() -> int:
    return jax.process_count()


def _error(message: str) -> GcompError:
    return user_error(GcompError, message)


class Mesh:
    """An n-dimensional grid of devices with named axes, over ``jax.sharding.Mesh``.

    ``Mesh(("data",))``: all devices on one axis. ``Mesh(("data", "model"), shape=(2, 2))``: a
    2x2 grid. ``devices``: gcomp devices, device strings ("cpu:1") or jax devices, in grid order
    (row-major); all of ``devices()`` by default.
    """

    def __init__(self, axis_names=("data",), devices=None, shape=None):
        if isinstance(axis_names, str):
            axis_names = (axis_names,)
        axis_names = tuple(axis_names)
        if not axis_names or not all(isinstance(a, str) for a in axis_names) or \
                len(set(axis_names)) != len(axis_names):
            raise _error(f"Mesh: axis_names must be distinct strings, like ('data',) or "
                         f"('data', 'model'); got {axis_names!r}")
        devs = list(jax.devices()) if devices is None else [_jax_device(d) for d in devices]
        if len(set(devs)) != len(devs):
            raise _error("Mesh: a device appears twice in devices=")
        if shape is None:
            if len(axis_names) > 1:
                raise _error(f"Mesh: give shape= for {len(axis_names)} axes {axis_names}, e.g. "
                             f"shape={(len(devs),) + (1,) * (len(axis_names) - 1)}")
            shape = (len(devs),)
        shape = tuple(int(s) for s in shape)
        if len(shape) != len(axis_names):
            raise _error(f"Mesh: shape {shape} has {len(shape)} axes but axis_names "
                         f"{axis_names} has {len(axis_names)}")
        if math.prod(shape) != len(devs):
            raise _error(f"Mesh: shape {shape} needs {math.prod(shape)} devices, got "
                         f"{len(devs)}; pass devices= or a shape whose product is {len(devs)}")
        self.axis_names = axis_names
        self.shape = shape
        self.jax_mesh = jax.sharding.Mesh(np.array(devs, dtype=object).reshape(shape), axis_names)

    @property
    def devices(self) -> list:
        """The mesh's jax devices in grid order (row-major)."""
        return list(self.jax_mesh.devices.flat)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def axis_size(self, name: str) -> int:
        return self.shape[self.axis_names.index(name)]

    def sharding(self, spec=()) -> jax.sharding.NamedSharding:
        """The jax sharding of a PartitionSpec-like tuple over this mesh."""
        return jax.sharding.NamedSharding(self.jax_mesh, jax.sharding.PartitionSpec(*spec))

    def __repr__(self):
        axes = ", ".join(f"{a}={s}" for a, s in zip(self.axis_names, self.shape))
        return f"Mesh({axes}; {', '.join(map(name_of_jax, self.jax_mesh.devices.flat))})"


def _jax_device(d):
    if isinstance(d, (str, Device)):
        return Device(d).jax_device()
    if isinstance(d, jax.Device):
        return d
    raise _error(f"Mesh: devices must be gcomp devices, strings like 'cpu:1' or jax devices; "
                 f"got {d!r}")


def from_local(local, mesh: Mesh, spec=None):
    """One global tensor over ``mesh`` from each process's own rows (``DistributedSampler``
    style): every process passes its shard ``local`` and gets the same global tensor, whose
    first dimension is the sum of the processes' (jax's ``make_array_from_process_local_data``).

    ``spec`` (a PartitionSpec-like tuple) says how the global tensor is split; by default its
    first dimension over the mesh's first axis, which is what ``gcomp.compile(step, mesh=mesh)``
    gives an argument, so the step uses it where it lies. With one process this is the tensor
    placed on the mesh. Pass the result to the compiled step: it is traced with the global shape.
    """
    from .frontend.tensor import Tensor, new_tensor
    from .ir.types import TensorType

    if not isinstance(mesh, Mesh):
        raise _error(f"from_local: mesh must be a gcomp.distributed.Mesh, got "
                     f"{type(mesh).__name__}")
    if isinstance(local, Tensor):
        if local.is_traced:
            raise _error("from_local: call it outside gcomp.compile, on the batch you pass to "
                         "the compiled step")
        data, dtype = np.asarray(local._storage.data), local.dtype
    else:
        from .frontend.creation import tensor as make_tensor

        t = make_tensor(local)
        data, dtype = np.asarray(t._storage.data), t.dtype
    if spec is None:
        spec = (mesh.axis_names[0],) if data.ndim else ()
    spec = _spec(mesh, "from_local", spec)
    if len(spec) > data.ndim:
        raise _error(f"from_local: the sharding {spec} has {len(spec)} entries but the local "
                     f"tensor has {data.ndim} dimensions {list(data.shape)}")
    sharding = mesh.sharding(spec)
    try:
        array = jax.make_array_from_process_local_data(sharding, data)
    except (ValueError, TypeError) as e:  # the local shape does not fit this process's devices
        raise _error(f"from_local: a local tensor of shape {list(data.shape)} does not fit the "
                     f"sharding {spec} over {mesh}: {e}") from None
    return new_tensor(array, TensorType(tuple(array.shape), dtype))


# ---------------------------------------------------------------------------------------------
# gcomp.compile(..., mesh=, shardings=): checked at compile(), placed per signature

def check_options(mesh, shardings) -> dict:
    """The ``shardings=`` mapping normalized to {key: spec tuple}, axis names checked."""
    if mesh is None:
        if shardings:
            raise _error("gcomp.compile: shardings= needs a mesh=gcomp.distributed.Mesh(...)")
        return {}
    if not isinstance(mesh, Mesh):
        raise _error(f"gcomp.compile: mesh= must be a gcomp.distributed.Mesh, got "
                     f"{type(mesh).__name__}")
    out = {}
    for key, spec in dict(shardings or {}).items():
        if not isinstance(key, (int, str)) or isinstance(key, bool):
            raise _error(f"shardings: key {key!r} must be an argument position, an argument name "
                         "or a state path (glob patterns allowed)")
        out[key] = _spec(mesh, key, spec)
    return out


def _spec(mesh, key, spec) -> tuple:
    if spec is None:
        return ()
    if isinstance(spec, jax.sharding.PartitionSpec):
        spec = tuple(spec)
    if isinstance(spec, str):
        spec = (spec,)
    if not isinstance(spec, (tuple, list)):
        raise _error(f"shardings[{key!r}]: expected a tuple like ('data', None), got {spec!r}")
    used = []
    for entry in spec:
        for axis in (entry if isinstance(entry, (tuple, list)) else (entry,)):
            if axis is None:
                continue
            if axis not in mesh.axis_names:
                raise _error(f"shardings[{key!r}]: unknown mesh axis {axis!r}; the mesh's axes "
                             f"are {mesh.axis_names}")
            if axis in used:
                raise _error(f"shardings[{key!r}]: axis {axis!r} is used twice in {spec!r}")
            used.append(axis)
    return tuple(tuple(e) if isinstance(e, list) else e for e in spec)


class Placement:
    """The shardings of one executable's inputs and outputs (Note [Data parallel])."""

    def __init__(self, mesh: Mesh, in_specs: list, out_specs: list):
        self.mesh = mesh
        self.in_shardings = tuple(mesh.sharding(s) for s in in_specs)
        self.out_shardings = tuple(None if s is None else mesh.sharding(s) for s in out_specs)

    def jit(self, fn, donate=()):
        jitted = jax.jit(fn, donate_argnums=donate, in_shardings=self.in_shardings,
                         out_shardings=self.out_shardings)
        return OnMesh(jitted, self.in_shardings)


class OnMesh:
    """A jitted function over a mesh that moves inputs committed elsewhere onto it."""

    def __init__(self, jitted, in_shardings):
        self.jitted = jitted
        self.in_shardings = in_shardings

    def __call__(self, *arrays):
        try:
            return self.jitted(*arrays)
        except ValueError as e:
            if not is_device_mismatch(e):
                raise
        return self.jitted(*self.place(arrays))

    def place(self, arrays) -> list:
        moved = [i for i, (a, s) in enumerate(zip(arrays, self.in_shardings))
                 if getattr(a, "committed", False) and a.sharding != s]
        out = list(arrays)
        for i, a in zip(moved, jax.device_put([arrays[i] for i in moved],
                                              [self.in_shardings[i] for i in moved])):
            out[i] = a
        return out

    def lower(self, *args):
        return self.jitted.lower(*args)


def placement(mesh: Mesh, shardings: dict, graph, trace, params, fn_name: str) -> Placement:
    """The placement of ``graph`` (an executable of ``trace``): arguments split on their first
    dimension over the mesh's first axis, state replicated, ``shardings`` overriding; a
    GcompError at the user's line for a dimension the devices do not divide or a key that names
    nothing."""
    n_args = len(trace.arg_paths)
    used = set()
    specs = {}
    in_specs = []
    for i, v in enumerate(graph.inputs):
        if i < n_args:
            path = trace.arg_paths[i]
            pos, name = arg_name(path, params)
            what = describe_arg(path, params)
            key = next((k for k in (pos, name) if k is not None and k in shardings), None)
            if key is None:
                spec = (mesh.axis_names[0],) if v.type.shape else ()
            else:
                spec = shardings[key]
                used.add(key)
        else:
            what = f"state {v.state}"
            key = _state_key(shardings, v.state)
            spec = () if key is None else shardings[key]
            if key is not None:
                used.add(key)
            specs[v.state] = spec
        _check(mesh, spec, v.type.shape, what, fn_name)
        in_specs.append(spec)
    unused = [k for k in shardings if k not in used]
    if unused:
        args = [arg_name(p, params)[1] for p in trace.arg_paths]
        states = [v.state for v in graph.inputs[n_args:]]
        raise _error(f"gcomp.compile({fn_name}): shardings key {unused[0]!r} matches no argument "
                     f"or state; arguments: {', '.join(map(str, args)) or 'none'}; state: "
                     f"{', '.join(states) or 'none'}")
    out_specs = [None] * len(graph.outputs)  # the user's outputs: as XLA's partitioner chooses
    for state, value in graph.updates:
        key = _state_key(shardings, state)
        if key is not None:
            spec = shardings[key]
        else:  # the state it replaces; a new .grad like its tensor; else replicated
            spec = specs.get(state, specs.get(state.removesuffix(".grad"), ()))
        _check(mesh, spec, value.type.shape, f"state {state}", fn_name)
        out_specs.append(spec)
    return Placement(mesh, in_specs, out_specs)


def arg_name(path, params):
    """(position or None, name) of an argument leaf: (0, "x"), (1, "batch[0]"), (None, "y")."""
    if path[0] == "kw":
        return None, ".".join(map(str, path[1:]))
    pos = path[0]
    name = params[pos] if pos < len(params) else f"#{pos}"
    return pos, name + "".join(f"[{p}]" for p in path[1:])


def describe_arg(path, params) -> str:
    pos, name = arg_name(path, params)
    return f"argument {name}" if pos is None else f"argument {pos} ({name})"


def _state_key(shardings, state):
    if state in shardings:
        return state
    return next((k for k in shardings if isinstance(k, str) and any(c in k for c in "*?[")
                 and fnmatch.fnmatchcase(state, k)), None)


def _check(mesh, spec, shape, what, fn_name) -> None:
    if len(spec) > len(shape):
        raise _error(f"gcomp.compile({fn_name}): the sharding {spec} of {what} has {len(spec)} "
                     f"entries but the tensor has {len(shape)} dimensions {list(shape)}")
    for dim, entry in enumerate(spec):
        axes = entry if isinstance(entry, tuple) else (entry,)
        n = math.prod(mesh.axis_size(a) for a in axes if a is not None)
        if shape[dim] % n:
            names = [a for a in axes if a is not None]
            over = f"axis {names[0]!r}" if len(names) == 1 else f"axes {' x '.join(names)}"
            raise _error(f"gcomp.compile({fn_name}): {what} has size {shape[dim]} in dimension "
                         f"{dim}, which does not divide evenly over the {n} devices of mesh "
                         f"{over}; use a size that is a multiple of {n} (pad the batch, or "
                         f"DataLoader(drop_last=True)), or place it another way with "
                         f"shardings=")
