"""conv_choice: pick, per convolution and backend, how the lowering computes it.

Note [Choosing a convolution algorithm]
A ``convolution`` node's ``algorithm`` attribute says how the lowering computes it: ``"xla"``
(XLA's convolution), ``"im2col"`` (patches, then one matmul) or ``"kn2row"`` (one matmul per
kernel tap, all in one dot_general, then a shifted sum; Note [im2col lowering] in
lowering/conv.py). All compute the same numbers, so the choice is only about speed, and this pass
owns it: it writes the attribute on every convolution, forward and backward (after autodiff the
input gradient is a convolution with lhs_dilation and a flipped kernel, the weight gradient one
with the batch as features and ``batch_groups``), and the IR dump shows what was chosen (the
attribute is printed when it is not the default, "xla").

The ``conv`` option forces a choice ("xla", "im2col", "kn2row"; the last two only where they
apply: not with both kinds of groups, nor on empty shapes) or leaves it to a cost model ("auto",
the default). Off CPU the model always says "xla": cuDNN and the TPU's convolution units beat a
gathered matmul. On CPU, XLA's convolution (an Eigen spatial convolution) is a blocked matrix
multiply over input channels by output channels that runs far below the machine's matmul speed
when either is small, as in the first layers of most CNNs; im2col pays for writing the patches
(kernel taps times the input) and then runs one large matmul; kn2row writes one image per tap
and output channel (cheap when the output has few channels, as the input gradient of a layer with
a narrow input has) and sums them. So, in nanoseconds:

    im2col = patches * COPY_NS + macs / GEMM_MACS_PER_NS
    kn2row = images * (IMAGE_NS + in_channels / GEMM_MACS_PER_NS) + taps * outputs * ADD_NS
    xla    = macs / (XLA_MACS_PER_NS * fill(in channels per group) * fill(out channels per group)
                     * fill(batch x output positions))

where ``fill(n) = min(1, n / width)`` is how much of the convolution's tile a dimension fills,
and the cheapest wins (XLA's on a tie). The constants were fitted to the per-convolution times
that ``benchmarks/conv.py`` measures (every lowering, the CNN workload's five convolutions and a
few others: least relative error, then least slowdown of the chosen lowering against the
measured best) and that script prints the model's choice next to the measured winner, so the
model is checked whenever it runs. Since im2col builds its patches one spatial dim at a time
(Note [im2col lowering]), patches plus one matmul measure faster than XLA's convolution on this
CPU nearly everywhere, even at full tiles; XLA's keeps the shapes where im2col does not apply. The option ``conv_backend`` overrides the backend the model assumes
(by default jax's default backend, where a compiled function's inputs live unless moved).

Each changed node takes one unit of pass fuel (Note [Pass fuel] in manager.py), so bisecting
GCOMP_PASS_FUEL finds a convolution whose chosen lowering misbehaves. Regions are rebuilt, not
edited (Note [Regions] in ir/graph.py): a convolution inside a scan body gets its choice too.
"""

from __future__ import annotations

import logging
import math

from ..ir.graph import Graph, Node
from ..ir.ops.conv import ALGORITHMS
from .manager import current_fuel, current_options, option, register

log = logging.getLogger("gcomp.passes")

CHOICES = ("auto", *ALGORITHMS)

# CPU cost model constants (Note [Choosing a convolution algorithm]; fitted by benchmarks/conv.py)
COPY_NS = 0.35  # per patch element, written by the gather and read back by the matmul
IMAGE_NS = 0.05  # per element of kn2row's images (the matmul writes them; padded, read back)
ADD_NS = 0.3  # per element read by kn2row's shifted sum
GEMM_MACS_PER_NS = 70.0  # the dot_general of im2col and kn2row
XLA_MACS_PER_NS = 30.0  # XLA's CPU convolution at full tiles
XLA_TILE = {"in": 16, "out": 16, "rows": 256}  # widths of fill(): channels, batch x positions


def _check_choice(value) -> str:
    if value not in CHOICES:
        raise ValueError(f"expected one of {', '.join(map(repr, CHOICES))}")
    return value


def _check_backend(value) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a jax platform name such as 'cpu', 'gpu' or 'tpu'")
    return value.lower()


option("conv", "auto", _check_choice,
       "how convolutions are computed: 'auto' (a cost model per convolution and backend), "
       "'xla' (XLA's convolution), 'im2col' (patches and one matmul) or 'kn2row' (a matmul "
       "per kernel tap and a shifted sum)", needs="conv_choice")
option("conv_backend", None, _check_backend,
       "the backend the convolution cost model assumes (default: jax's default backend)")


def _fill(n: int, width: int) -> float:
    return min(1.0, n / width)


def estimate(x_shape, w_shape, out_shape, groups: int = 1, batch_groups: int = 1) -> dict:
    """Estimated CPU nanoseconds of each algorithm for one convolution (the cost model)."""
    o, i = w_shape[:2]
    taps = math.prod(w_shape[2:])
    ng = groups * batch_groups
    rows = out_shape[0] * math.prod(out_shape[2:])  # batch per group x output positions
    macs = rows * o * i * taps
    patches = ng * rows * i * taps
    fill = (_fill(i, XLA_TILE["in"]) * _fill(o // ng, XLA_TILE["out"])
            * _fill(rows, XLA_TILE["rows"]))
    images = o * taps * out_shape[0] * math.prod(x_shape[2:])  # kn2row's per-tap images
    return {"xla": macs / (XLA_MACS_PER_NS * max(fill, 1e-9)),
            "im2col": patches * COPY_NS + macs / GEMM_MACS_PER_NS,
            "kn2row": images * (IMAGE_NS + i / GEMM_MACS_PER_NS)
            + taps * o * rows * ADD_NS}


def choose(node: Node, backend: str, forced: str = "auto") -> str:
    """The algorithm for a convolution node: ``forced`` unless "auto", else the cost model's."""
    from ..lowering.conv import im2col_supported

    x, w = (v.type for v in node.inputs)
    a = node.attrs
    possible = im2col_supported(x.shape, w.shape, a["stride"], a["padding"], a["lhs_dilation"],
                                a["rhs_dilation"], a["groups"], a["batch_groups"])
    if forced != "auto":
        return forced if possible or forced == "xla" else "xla"
    if backend != "cpu" or not possible:
        return "xla"
    cost = estimate(x.shape, w.shape, node.outputs[0].type.shape, a["groups"],
                    a["batch_groups"])
    return min(ALGORITHMS, key=cost.get)  # ties: the first, XLA's


def _default_backend() -> str:
    import jax

    return jax.default_backend()


def _choose_all(graph: Graph, backend: str, forced: str) -> bool:
    """Write the choice on every convolution of ``graph`` and its regions; whether any changed."""
    fuel = current_fuel()
    changed = False
    for node in graph.nodes:
        if node.regions:
            regions = tuple(r.copy() for r in node.regions)
            if any([_choose_all(r, backend, forced) for r in regions]):
                node.attrs = {**node.attrs, "regions": regions}
                changed = True
            continue
        if node.op != "convolution":
            continue
        algorithm = choose(node, backend, forced)
        if algorithm == node.attrs["algorithm"]:
            continue
        where = f" at {node.loc}" if node.loc else ""
        if not fuel.take(f"conv_choice/{algorithm} on convolution -> {node.outputs[0].type}"
                         f"{where}"):
            break
        node.attrs = {**node.attrs, "algorithm": algorithm}
        changed = True
    return changed


@register("conv_choice")
def conv_choice(graph: Graph) -> Graph:
    """Set each convolution's ``algorithm`` (Note [Choosing a convolution algorithm])."""
    opts = current_options()
    backend = opts["conv_backend"] or _default_backend()
    _choose_all(graph, backend, opts["conv"])
    return graph
