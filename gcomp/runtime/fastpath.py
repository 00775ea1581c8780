"""The hot path of a compiled call: one generated Python function per executable.

Note [The fast path]
~~~~~~~~~~~~~~~~~~~~
A training step of a small model runs in tens of microseconds, so the Python between the user's
call and the executable is a real part of the step: building a cache key, looking it up, walking
the guards, building the array list and writing state back cost about 10 us when done by the
general code in compiled.py, which loops over lists and dispatches on what each entry needs.

So, like TorchDynamo's guards, each executable gets one straight-line function, generated from its
entry when it first runs, that does exactly that entry's work with nothing looked up at run time:
it checks the argument types and flags, the grad mode and the entry's guards (captured shapes,
requires_grad flags, train/eval modes, which ``.grad`` objects exist) as a chain of ``is`` and
``==`` tests on constants bound into its globals, builds the array list literally, runs the
executable, and writes each state update back with one assignment. Anything it does not handle
(keyword arguments, views, a tracing interpreter on the stack, a failed guard) returns ``MISS``
and the call takes the general path, which is also the only path that compiles. The function for
the last executable that ran is tried first (a monomorphic inline cache); a hit on another entry
through the general path makes that one hot.

The generated code is derived from, and must stay equivalent to, ``Entry.guards_hold``,
``_fast_key`` and ``CompiledFunction._finish``; tests/runtime/test_fastpath.py checks it against
them (guard failures fall back, state and ``.grad`` write-back, the tape node of a step).
"""

from __future__ import annotations

import sys

from ..core.dispatch import Mode
from ..core.tensor import Storage
from ..ir import types
from ..ir.graph import Value

MISS = object()
_SCALARS = (int, float, bool, str, type(None))


def make(compiled, entry, args):
    """The generated call for ``entry``, for arguments shaped like ``args``; None if the entry
    needs the general path every time."""
    tr = entry.trace
    if not entry.plain or tr.arg_writebacks:
        return None
    if not all(type(a) in _SCALARS or isinstance(a, Mode.tensor_class) for a in args):
        return None  # other objects (a method's self, lists) go through the general key
    if entry.diff_outputs and not tr.backward_called:
        return None  # a call inside eager autograd: its tape node needs the general path
    g = {"MISS": MISS, "Mode": Mode, "stack": Mode.stack, "Value": Value, "Storage": Storage,
         "refcount": sys.getrefcount, "run_plain": entry.run.undonated, "jitted": entry.run.jitted,
         "compiled": compiled, "entry": entry, "Tensor": Mode.tensor_class, "types": types}
    consts: list = []

    def const(x) -> str:
        consts.append(x)
        name = f"K{len(consts) - 1}"
        g[name] = x
        return name

    n = len(args)
    params = ", ".join(f"a{i}" for i in range(n)) + ("," if n == 1 else "")
    body = [f"if len(args) != {n} or len(stack) > 1 or Mode.grad_enabled != "
            f"{bool(Mode.grad_enabled)} or types.DEFAULT_FLOAT is not "
            f"{const(types.DEFAULT_FLOAT)} or Mode.autocast is not {const(Mode.autocast)}:",
            "    return MISS"]
    if n:
        body.append(f"{params} = args")
    arrays = []
    for i, a in enumerate(args):
        t = type(a)
        if t in _SCALARS:
            body += [f"if type(a{i}) is not {const(t)} or a{i} != {const(a)}:", "    return MISS"]
            continue
        ty = const(a._type)  # the same TensorType object is the common case: `is` first
        body += [f"if type(a{i}) is not {const(t)} or a{i}._base is not None or "
                 f"(a{i}._type is not {ty} and a{i}._type != {ty}) or a{i}.requires_grad != "
                 f"{bool(a.requires_grad)}:", "    return MISS",
                 f"d{i} = a{i}._storage.data",
                 f"if type(d{i}) is Value:", "    return MISS"]
        arrays.append(f"d{i}")
    # Entry.guards_hold, unrolled
    for st, t, _ in tr.captured:
        body += [f"if {const(st)}.data.shape != {const(t._type.shape)}:", "    return MISS"]
    for t, rg in tr.captured_requires_grad:
        body += [f"if {const(t)}.requires_grad != {bool(rg)}:", "    return MISS"]
    for m, training, _, struct in tr.modes:
        k = const(m)
        body += [f"if {k}.training != {bool(training)} or {k}._struct != {struct}:",
                 "    return MISS"]
    for t, grad in entry.guards:
        body += [f"if {const(t)}._grad is not {const(grad)}:", "    return MISS"]
    body.append("compiled._hits += 1")
    arrays += [f"{const(st)}.data" for st in entry.state_storages]
    body.append(f"arrays = [{', '.join(arrays)}]")
    donate = entry.run.donate
    if donate:
        # Note [Donation] in compiled.py: the Storage, the list and refcount's argument
        held = " or ".join(f"refcount(arrays[{i}]) > 3" for i in donate)
        body += [f"if {held}:", "    outs = run_plain(*arrays)", "else:",
                 "    outs = jitted(*arrays)"]
    else:
        body.append("outs = jitted(*arrays)")
    # CompiledFunction._finish, unrolled
    first = entry.n_out + entry.n_res
    for k, wb in enumerate(tr.writebacks):
        o = f"outs[{first + k}]"
        if wb.storage is not None:
            s = const(wb.storage)
            body += [f"{s}.data = {o}", f"{s}.version += 1"]
        else:
            t = const(wb.grad_of)
            body += [f"gr = {t}._grad", "if gr is not None:", f"    gr._storage.data = {o}",
                     "    gr._storage.version += 1", "else:",
                     f"    {t}._grad = Tensor(Storage({o}), {const(wb.grad_of._type)})"]
    for t in tr.grads_to_none:
        body.append(f"{const(t)}._grad = None")
    for i, ty in enumerate(entry.out_types[:entry.n_out]):
        body.append(f"r{i} = Tensor(Storage(outs[{i}]), {const(ty)})")
    if entry.diff_outputs and Mode.grad_enabled and entry.wanted != []:
        # a step that ran backward inside: its outputs point at the one node that raises
        # (_tape_call in compiled.py); the first general call made it
        if entry.spent is None:
            return None
        node = const(entry.spent)
        for k, i in enumerate(entry.diff_outputs):
            body += [f"r{i}.requires_grad = True", f"r{i}._grad_fn = {node}",
                     f"r{i}._out_index = {k}"]
    if entry.single_output is not None:
        body.append(f"return r{entry.single_output}")
    else:
        from .compiled import _fill

        g["fill"] = _fill
        tensors = ", ".join(f"r{i}" for i in range(entry.n_out))
        body.append(f"return fill({const(tr.out_tree)}, [{tensors}{',' if entry.n_out else ''}])")
    src = "def hot(args):\n" + "".join(f"    {line}\n" for line in body)
    code = compile(src, f"<gcomp fast path of {entry.graph.name}>", "exec")
    exec(code, g)  # noqa: S102 - our own generated source, from the entry's own objects
    hot = g["hot"]
    hot.source = src
    return hot
