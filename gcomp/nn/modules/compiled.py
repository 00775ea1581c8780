"""``gcomp.CompiledModule``: a compiled module is an ``nn.Module`` (Note in
gcomp/runtime/compiled.py, CompiledModuleBase), so it nests like torch.compile's OptimizedModule.
"""

from __future__ import annotations

from ...runtime.compiled import CompiledModuleBase
from .module import Module


class CompiledModule(CompiledModuleBase, Module):
    __doc__ = CompiledModuleBase.__doc__
