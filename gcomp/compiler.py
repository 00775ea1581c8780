"""torch.compiler's functions over gcomp.compile (``gcomp._dynamo`` is the same module, for
programs that call ``torch._dynamo.reset()``)."""

from __future__ import annotations

from .core.dispatch import Mode, TraceInterpreter


def reset() -> None:
    """Forget every compiled executable of every live compiled function and module (the next
    call of each compiles again), as torch.compiler.reset / torch._dynamo.reset do."""
    from .runtime.compiled import LIVE

    for compiled in list(LIVE):
        compiled.cache_clear()


def is_compiling() -> bool:
    """True while gcomp.compile traces the code that asks."""
    return any(isinstance(i, TraceInterpreter) for i in Mode.stack[1:])


is_dynamo_compiling = is_compiling


def compile(*args, **kwargs):  # noqa: A001
    """gcomp.compile."""
    from .runtime.compiled import compile as _compile

    return _compile(*args, **kwargs)
