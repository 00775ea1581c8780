"""The targets of ``gcomp bench`` and ``gcomp dump``: a built-in workload or ``FILE.py:FUNCTION``.

Note [User scripts]
``gcomp bench my_model.py:train_step --batch 64`` reads a script this way:

- The script is imported as a module from its path (its folder first on ``sys.path`` while it
  is imported, so it can import its neighbours); it is not run as ``__main__``, so code under
  ``if __name__ == "__main__":`` does not run.
- The target is a function of that module.
- Its inputs come from a function of the script named ``example_inputs`` (or ``inputs``) that
  returns a tuple of tensors (a single tensor is a tuple of one). It is called as
  ``example_inputs(batch)`` with ``--batch`` when that is given and as ``example_inputs()``
  otherwise, so give ``batch`` a default. A target that takes no arguments is called with none
  (and needs no ``example_inputs``).
- The eager variant calls ``function(*inputs)``, the compiled one ``gcomp.compile(function)
  (*inputs)``. Both act on the script's own state (its model and optimizer), so a training step
  trains the same model in both; the step's time does not depend on that.

For example::

    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = gcomp.optim.SGD(model.parameters(), lr=0.01)

    def example_inputs(batch=64):
        return gcomp.randn(batch, 784), gcomp.randint(0, 10, (batch,))

    def train_step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..ir.errors import GcompError
from .measure import error_text, where
from .workloads import WORKLOADS, Workload

INPUT_FUNCTIONS = ("example_inputs", "inputs")


@dataclass
class Target:
    """A built-in workload, or a function of a user script with its inputs."""

    name: str
    workload: Workload | None = None
    fn: Callable | None = None
    inputs: tuple = ()
    path: str | None = None


def resolve(spec: str, batch: int | None = None) -> list[Target]:
    """``mlp``, ``mlp,cnn``, ``all`` or ``FILE.py:FUNCTION`` as targets (Note [User scripts])."""
    spec = spec.strip()
    if ":" in spec or spec.endswith(".py"):
        return [script_target(spec, batch)]
    names = list(WORKLOADS) if spec == "all" else [n.strip() for n in spec.split(",")]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise GcompError(f"{spec!r} is not a built-in workload ({', '.join(WORKLOADS)}, all) "
                         "nor FILE.py:FUNCTION (for example my_model.py:train_step)")
    return [Target(n, workload=WORKLOADS[n].with_batch(batch)) for n in names]


def script_target(spec: str, batch: int | None) -> Target:
    path, colon, func = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if colon and (not path.endswith(".py") or not func.isidentifier()):
        raise GcompError(f"bad target {spec!r}: write FILE.py:FUNCTION, for example "
                         "my_model.py:train_step, or a built-in workload "
                         f"({', '.join(WORKLOADS)}, all)")
    module = load_script(path)
    functions = _functions(module)
    if not colon:
        raise GcompError(f"{spec}: name the function to run, {path}:FUNCTION; {path} defines "
                         f"{', '.join(functions) or 'no functions'}")
    fn = getattr(module, func, None)
    if not callable(fn):
        raise GcompError(f"{path} has no function {func!r}; it defines "
                         f"{', '.join(functions) or 'no functions'}")
    return Target(f"{Path(path).stem}:{func}", fn=fn, inputs=script_inputs(module, fn, path,
                                                                              batch), path=path)


def load_script(path: str):
    """Import ``path`` as a module (not as ``__main__``)."""
    p = Path(path)
    if not p.is_file():
        raise GcompError(f"no such file: {path}")
    name = "gcomp_script_" + re.sub(r"\W", "_", p.stem)
    spec = importlib.util.spec_from_file_location(name, p)
    module = importlib.util.module_from_spec(spec)
    folder = str(p.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - the user's script: one line that says where
        sys.modules.pop(name, None)
        raise GcompError(f"importing {path} raised {error_text(e, where(e))}") from e
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def script_inputs(module, fn, path: str, batch: int | None) -> tuple:
    make = next((getattr(module, n) for n in INPUT_FUNCTIONS if callable(getattr(module, n,
                                                                                 None))), None)
    if _takes_nothing(fn):
        return ()
    if make is None:
        required = _required(fn)
        if required:
            raise GcompError(f"{fn.__name__}({', '.join(required)}) takes arguments, but {path} "
                             "defines no example_inputs(batch): add one that returns them as a "
                             "tuple of tensors")
        return ()
    try:
        got = make(batch) if batch is not None else make()
    except Exception as e:  # noqa: BLE001
        raise GcompError(f"{make.__name__}() in {path} raised {error_text(e, where(e))}") from e
    from ..frontend.tensor import Tensor

    if isinstance(got, Tensor):
        return (got,)
    if not isinstance(got, (tuple, list)):
        raise GcompError(f"{make.__name__}() in {path} must return a tuple of tensors, got "
                         f"{type(got).__name__}")
    return tuple(got)


def _required(fn) -> list[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _takes_nothing(fn) -> bool:
    try:
        return not inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _functions(module) -> list[str]:
    return [n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")
            and v.__module__ == module.__name__]
