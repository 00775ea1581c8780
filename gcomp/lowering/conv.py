"""jax rule for convolution (NC*/OI* layout)."""

from __future__ import annotations

from jax import lax

from . import lowers


@lowers("convolution")
def _convolution(x, w, stride, padding, lhs_dilation, rhs_dilation, groups, batch_groups):
    spatial = "".join("DHW"[-(x.ndim - 2):]) if x.ndim <= 5 else None
    if spatial is None:
        dn = lax.conv_dimension_numbers(x.shape, w.shape, None)
    else:
        dn = lax.conv_dimension_numbers(x.shape, w.shape,
                                        (f"NC{spatial}", f"OI{spatial}", f"NC{spatial}"))
    return lax.conv_general_dilated(
        x, w, tuple(stride), tuple(tuple(p) for p in padding), tuple(lhs_dilation),
        tuple(rhs_dilation), dn, feature_group_count=groups, batch_group_count=batch_groups,
        precision=lax.Precision.HIGHEST, preferred_element_type=x.dtype)
