"""torch.backends' flags, for programs that set them: gcomp runs through XLA, which picks its own
kernels and autotunes on GPU, so the cuDNN and TF32 switches are kept (reads return what was set)
but change nothing; ``mps`` (Apple GPUs) is never available."""

from __future__ import annotations

from types import SimpleNamespace

from .frontend.device import cuda_is_available as _cuda

cudnn = SimpleNamespace(enabled=True, benchmark=False, deterministic=False, allow_tf32=True,
                        is_available=_cuda, version=lambda: None)
cuda = SimpleNamespace(matmul=SimpleNamespace(allow_tf32=False,
                                              allow_fp16_reduced_precision_reduction=True,
                                              allow_bf16_reduced_precision_reduction=True),
                       is_built=_cuda)
mps = SimpleNamespace(is_available=lambda: False, is_built=lambda: False)
mkldnn = SimpleNamespace(enabled=True, is_available=lambda: False)
openmp = SimpleNamespace(is_available=lambda: False)
