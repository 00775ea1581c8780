"""``grad`` has no lowering: the autodiff pass replaces it before lowering."""

from __future__ import annotations

from . import lowers


@lowers("grad")
def _grad(*args, outputs):
    from ..ir.errors import GcompError

    raise GcompError("a grad node reached lowering: run the 'autodiff' pass first "
                     "(gcomp.compile and gcomp.ir.compile do)")
