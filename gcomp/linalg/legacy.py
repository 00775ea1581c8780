"""torch's top-level linear-algebra names over gcomp.linalg: det, inverse, logdet, slogdet,
cholesky (the deprecated one), pinverse, matrix_power, and svd with its legacy (U, S, V)."""

from __future__ import annotations

from collections import namedtuple

from . import cholesky as _cholesky
from . import det, inv, logdet, matrix_power, pinv, slogdet  # noqa: F401
from . import svd as _svd

SvdResult = namedtuple("SvdResult", ["U", "S", "V"])
QrResult = namedtuple("QrResult", ["Q", "R"])


def inverse(input):
    return inv(input)


def cholesky(input, upper=False):
    return _cholesky(input, upper=upper)


def pinverse(input, rcond=1e-15):
    return pinv(input, rtol=rcond)


def svd(input, some=True, compute_uv=True):
    """torch.svd: U, S, V (not Vh); some=False gives full U and V."""
    U, S, Vh = _svd(input, full_matrices=not some)
    from ..frontend.shape_ops import transpose

    return SvdResult(U, S, transpose(Vh, -2, -1))


def qr(input, some=True):
    from . import qr as _qr

    Q, R = _qr(input, "reduced" if some else "complete")
    return QrResult(Q, R)


from .products import _give_out  # noqa: E402

_give_out(globals(), ("inverse", "cholesky", "svd", "qr"))
