"""torch.nn.utils.parametrizations: weight_norm and spectral_norm as parametrizations
(parametrize.py), written with gcomp ops so they run eagerly and inside gcomp.compile.

weight_norm keeps ``original0`` (the magnitude g) and ``original1`` (the direction v) and computes
``v * g / ||v||`` on each read of the weight. spectral_norm keeps the weight as ``original`` and
the power iteration's vectors as buffers ``_u`` and ``_v`` of the parametrization; in training
mode each read of the weight runs ``n_power_iterations`` steps that update ``_u`` and ``_v`` in
place (under no_grad: inside gcomp.compile these are state updates written back after the call),
and eval mode reads them as they are. orthogonal maps its original through the matrix
exponential, the Cayley map or a product of Householder reflectors (written here with gcomp ops,
so they differentiate like any other op); its right_inverse (the QR factorization that starts it,
and assignments to the weight) runs on the host, outside gcomp.compile.
"""

from __future__ import annotations

import numpy as np

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core.dispatch import user_error

from .. import functional as F
from ..functional._common import NNValueError, tracing
from ..modules.module import Module
from . import parametrize

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


class _DimError(GcompError, IndexError):
    """A dim out of range (PyTorch raises IndexError)."""


class _NotImplemented(GcompError, NotImplementedError):
    """What torch raises NotImplementedError for (register_parametrization catches it)."""


def _norm_except_dim(v: Tensor, pow: float = 2, dim: int = 0) -> Tensor:
    """torch.norm_except_dim: the pow-norm of v over every dim but ``dim``, kept as size-1 dims;
    ``dim=-1`` means over all of v (a 0-d tensor), as in torch."""
    if dim == -1:
        return gcomp.norm(v, pow)
    if not -v.ndim <= dim < max(v.ndim, 1):
        raise user_error(_DimError, f"Dimension out of range (expected to be in range of "
                         f"[{-v.ndim}, {v.ndim - 1}], but got {dim}): weight_norm's dim must be "
                         "one of the weight's dimensions, or None for the norm over all of it")
    dim %= max(v.ndim, 1)
    others = tuple(i for i in range(v.ndim) if i != dim)
    if not others:  # a vector: the norm of each element alone
        return gcomp.abs(v)
    return gcomp.norm(v, pow, dim=others, keepdim=True)


def _weight_norm(v: Tensor, g: Tensor, dim: int = 0) -> Tensor:
    """torch._weight_norm: v scaled to norm g (over every dim but ``dim``)."""
    return v * (g / _norm_except_dim(v, 2, dim))


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor):
        return _norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Weight normalization (https://arxiv.org/abs/1602.07868): ``module.<name>`` becomes
    ``g * v / ||v||`` with g (``parametrizations.<name>.original0``) and v (``original1``)
    parameters, the norm over every dim but ``dim`` (all of them for ``dim=None``). A state_dict
    of the legacy weight_norm (``<name>_g``, ``<name>_v``) loads into it."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def _weight_norm_compat_hook(state_dict, prefix, local_metadata, strict, missing_keys,
                                 unexpected_keys, error_msgs) -> None:
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module._register_load_state_dict_pre_hook(_weight_norm_compat_hook)
    return module


class _SpectralNorm(Module):
    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12):
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise user_error(_DimError, "Dimension out of range (expected to be in range of "
                             f"[-{ndim}, {ndim - 1}] but got {dim}): pass as dim the weight's "
                             "dimension of output features")
        if n_power_iterations <= 0:
            raise user_error(NNValueError, "Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:  # a vector is normalized exactly (forward)
            self.n_power_iterations = n_power_iterations
            with gcomp.no_grad():
                weight_mat = self._reshape_weight_to_matrix(weight)
                h, w = weight_mat.shape
                u = weight_mat.new_empty(h).normal_(0, 1)
                v = weight_mat.new_empty(w).normal_(0, 1)
                self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
                self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
                # start from vectors near the singular ones
                self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.flatten(1)

    def _power_method(self, weight_mat: Tensor, n_power_iterations: int) -> None:
        """Update _u and _v in place (their objects stay the module's buffers, and inside
        gcomp.compile the updates are state written back)."""
        with gcomp.no_grad():
            for _ in range(n_power_iterations):
                self._u = F.normalize(gcomp.mv(weight_mat, self._v), dim=0, eps=self.eps,
                                      out=self._u)
                self._v = F.normalize(gcomp.mv(weight_mat.t(), self._u), dim=0, eps=self.eps,
                                      out=self._v)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        # copies, so that a later in-place update does not change what this result depends on
        u = self._u.clone()
        v = self._v.clone()
        sigma = gcomp.vdot(u, gcomp.mv(weight_mat, v))
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def _output_dim(module: Module) -> int:
    from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d

    return 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Spectral normalization (https://arxiv.org/abs/1802.05957): ``module.<name>`` becomes
    ``W / sigma(W)``, sigma estimated by power iteration on W reshaped to a matrix with ``dim``
    (default 0, or 1 for ConvTranspose) first. The vectors start from 15 iterations on random
    ones and advance ``n_power_iterations`` steps at each read in training mode."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise user_error(NNValueError, f"Module '{type(module).__name__}' has no parameter or "
                         f"buffer with name '{name}'; pass the name of a weight tensor "
                         "(name='weight' by default)")
    if not weight.dtype.is_floating_point:
        raise user_error(GcompError, f"spectral_norm: '{name}' has dtype {weight.dtype}; "
                         "spectral normalization needs a floating point tensor")
    dim = _output_dim(module) if dim is None else dim
    parametrize.register_parametrization(module, name,
                                         _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


# -- orthogonal -------------------------------------------------------------------------------

_MAPS = ("matrix_exp", "cayley", "householder")
_MAX_SQUARINGS = 16  # ||A||_1 up to 2**15; float32 rounding, doubled by each squaring, ends
# up larger than the result's entries past that anyway


def _eye(n: int, k: int, like: Tensor) -> Tensor:
    return gcomp.eye(n, k, dtype=like.dtype, device=like.device)


def _scalar(value: float, like: Tensor) -> Tensor:
    """A 0-d operand (not an op attribute: eagerly, one compiled op whatever the value)."""
    return gcomp.tensor(value, dtype=like.dtype, device=like.device)


def _matrix_exp(a: Tensor) -> Tensor:
    """exp(a) of a (batch of) square matrices: a degree-12 Taylor polynomial of a / 2**s, with
    ||a / 2**s||_1 <= 1/2, squared s times. Eagerly s is read on the host; inside a trace it
    depends on traced values, so every squaring up to _MAX_SQUARINGS is computed and kept only
    where s asks for it."""
    if tracing():
        norm = gcomp.amax(gcomp.abs(a.detach()).sum(-2))
        s = gcomp.clamp(gcomp.ceil(gcomp.log2(norm)) + 1, min=0, max=_MAX_SQUARINGS)
        b = a * gcomp.pow(2.0, -s).to(a.dtype)
    else:
        norm = float(np.abs(np.asarray(a.detach())).sum(-2).max(initial=0.0))
        s = min(max(int(np.ceil(np.log2(norm))) + 1, 0), _MAX_SQUARINGS) if norm > 0 else 0
        b = a * _scalar(2.0 ** -s, a)
    eye = _eye(a.shape[-1], a.shape[-1], a)
    x = eye
    for k in range(12, 0, -1):  # Horner: I + b (I + b/2 (I + b/3 (...)))
        x = eye + (b @ x) * _scalar(1.0 / k, a)
    if not tracing():
        for _ in range(s):
            x = x @ x
        return x
    for i in range(_MAX_SQUARINGS):
        x = gcomp.where(s > i, x @ x, x)
    return x


def _householder_product(a: Tensor, tau: Tensor) -> Tensor:
    """torch.linalg.householder_product: the first k columns of H_1 ... H_k, H_i = I - tau_i
    v_i v_i^T with v_i column i of a below the diagonal and 1 on it."""
    n, k = a.shape[-2], a.shape[-1]
    v = a.tril(diagonal=-1) + _eye(n, k, a)
    tau = tau.unsqueeze(-2)
    q = _eye(n, k, a).expand(*a.shape)
    columns = np.eye(k, dtype=np.dtype(a.dtype.name))
    for i in range(k - 1, -1, -1):
        # column i picked by a product with a one-hot vector (data, not an op attribute, so
        # eagerly every step runs the same compiled ops)
        e = gcomp.tensor(columns[:, i:i + 1], device=a.device)
        vi = v @ e
        q = q - ((tau @ e) * vi) @ (vi.mT @ q)
    return q


def _is_orthogonal(q: np.ndarray) -> bool:
    n, k = q.shape[-2], q.shape[-1]
    eps = 10.0 * n * float(np.finfo(q.dtype).eps)
    return bool(np.allclose(np.swapaxes(q, -1, -2) @ q, np.eye(k), rtol=1e-5, atol=eps))


def _make_orthogonal(a: np.ndarray) -> np.ndarray:
    """The Q of a = QR with diag(R) >= 0 (a is tall)."""
    q, r = np.linalg.qr(a)
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def _set_diagonal(a: np.ndarray, values) -> np.ndarray:
    i = np.arange(min(a.shape[-2:]))
    a[..., i, i] = values
    return a


class _Orthogonal(Module):
    def __init__(self, weight: Tensor, orthogonal_map: str, *, use_trivialization: bool = True):
        super().__init__()
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, x: Tensor) -> Tensor:
        n, k = x.shape[-2], x.shape[-1]
        transposed = n < k
        if transposed:
            x = x.mT
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            x = x.tril()
            if n != k:  # embed into a square matrix
                x = gcomp.cat([x, gcomp.zeros(*x.shape[:-1], n - k, dtype=x.dtype,
                                               device=x.device)], dim=-1)
            a = x - x.mT  # skew-symmetric
            if self.orthogonal_map == "matrix_exp":
                q = _matrix_exp(a)
            else:  # (I + A/2)(I - A/2)^-1
                eye = _eye(n, n, a)
                q = gcomp.linalg.solve(eye - 0.5 * a, eye + 0.5 * a)
            if n != k:
                q = q[..., :k]
        else:
            a = x.tril(diagonal=-1)
            tau = 2.0 / (1.0 + (a * a).sum(dim=-2))
            q = _householder_product(a, tau)
            # the diagonal of x holds the signs, not differentiated (as torch's int cast)
            q = q * x.diagonal(dim1=-2, dim2=-1).detach().int().to(q.dtype).unsqueeze(-2)
        if "base" in self._buffers:
            q = self.base @ q
        return q.mT if transposed else q

    def right_inverse(self, q: Tensor) -> Tensor:
        """The original that gives q (orthogonalized by QR first), computed on the host."""
        if tuple(q.shape) != self.shape:
            raise user_error(NNValueError, f"Expected a matrix or batch of matrices of shape "
                             f"{list(self.shape)}. Got a tensor of shape {list(q.shape)}.")
        if tracing():
            raise user_error(GcompError, "orthogonal: assigning the weight factors it by QR on "
                             "the host; assign it outside gcomp.compile")
        m = np.asarray(q.detach())
        transpose = m.shape[-2] < m.shape[-1]
        if transpose:
            m = np.swapaxes(m, -1, -2)
        n, k = m.shape[-2], m.shape[-1]
        if "base" not in self._buffers:
            if self.orthogonal_map in ("matrix_exp", "cayley"):
                raise _NotImplemented(
                    "It is not possible to assign to the matrix exponential or the Cayley "
                    "parametrizations when use_trivialization=False: assign to "
                    "parametrizations.<name>.original, or use use_trivialization=True or "
                    "orthogonal_map='householder'")
            # LAPACK's reflectors (torch.geqrf) with diag(R) > 0: the diagonal holds R's signs,
            # flipped where no reflection was used (tau == 0)
            h, tau = np.linalg.qr(m, mode="raw")
            a = np.ascontiguousarray(np.swapaxes(h, -1, -2))
            signs = np.sign(np.diagonal(a, axis1=-2, axis2=-1))
            a = _set_diagonal(a, np.where(tau == 0.0, -signs, signs))
            out = np.swapaxes(a, -1, -2) if transpose else a
        else:
            if n == k:
                base = m.copy() if _is_orthogonal(m) else _make_orthogonal(m)
            else:  # complete m to an n x n orthogonal matrix
                extra = np.asarray(gcomp.randn(*m.shape[:-1], n - k, dtype=q.dtype))
                base = _make_orthogonal(np.concatenate([m, extra], axis=-1))
            self.base = gcomp.tensor(np.ascontiguousarray(base), dtype=q.dtype, device=q.device)
            # -I: householder(zeros) is eye(n, k), and the other maps give I at 0 too
            out = _set_diagonal(np.zeros(q.shape, m.dtype), -1.0)
        return gcomp.tensor(np.ascontiguousarray(out), dtype=q.dtype, device=q.device)


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Make ``module.<name>`` (a matrix or batch of matrices) orthogonal: orthonormal columns
    when it is tall, rows when it is wide. ``orthogonal_map`` is "matrix_exp" (default for
    square), "cayley" or "householder" (default otherwise); with ``use_trivialization`` the
    parametrization keeps a buffer ``base`` that the map's result multiplies, starting from the
    weight orthogonalized by QR (completed at random when not square)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise user_error(NNValueError, f"Module '{type(module).__name__}' has no parameter or "
                         f"buffer with name '{name}'; pass the name of a weight matrix")
    if weight.ndim < 2:
        raise user_error(NNValueError, "Expected a matrix or batch of matrices. Got a tensor of "
                         f"{weight.ndim} dimensions.")
    if not weight.dtype.is_floating_point:
        raise user_error(GcompError, f"orthogonal: '{name}' has dtype {weight.dtype}; it needs "
                         "a floating point tensor")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _MAPS:
        raise user_error(NNValueError, 'orthogonal_map has to be one of "matrix_exp", "cayley", '
                         f'"householder". Got: {orthogonal_map}')
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
