"""torch.einsum as transposes, reductions and one dot_general per pair of operands."""

from __future__ import annotations

from ..core.dispatch import bind, user_error
from ..ir.errors import GcompError


def _parse(equation: str, operands):
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise user_error(GcompError, f"einsum(): the equation has {len(terms)} operands but "
                         f"{len(operands)} were given")
    ell_letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    max_ell = 0
    out_terms = []
    for term, x in zip(terms, operands):
        if "..." in term:
            n = x.ndim - (len(term) - 3)
            max_ell = max(max_ell, n)
            term = term.replace("...", "".join(ell_letters[-n:]) if n else "")
        if len(term) != x.ndim:
            raise user_error(GcompError, f"einsum(): the subscript {term!r} does not match an "
                             f"operand with {x.ndim} dims")
        if len(set(term)) != len(term):
            raise user_error(GcompError, "einsum(): repeated subscripts in one operand (diagonals) "
                             "are not supported")
        out_terms.append(term)
    ell = "".join(ell_letters[-max_ell:]) if max_ell else ""
    if arrow:
        out = rhs.replace("...", ell)
    else:
        counts = {}
        for t in out_terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return out_terms, out


def einsum(equation: str, operands):
    from .ops import broadcast_to

    terms, out = _parse(equation, operands)
    # Sizes per letter (size-1 dims broadcast, as torch does for ellipses).
    sizes: dict[str, int] = {}
    for t, x in zip(terms, operands):
        for c, d in zip(t, x.shape):
            if sizes.get(c, 1) == 1:
                sizes[c] = d
            elif d not in (1, sizes[c]):
                raise user_error(GcompError, f"einsum(): size mismatch for subscript {c!r}: "
                                 f"{sizes[c]} vs {d}")
    dtype = operands[0].dtype
    for x in operands[1:]:
        if x.dtype != dtype:
            raise user_error(GcompError, f"einsum(): operands must have the same dtype, as in "
                             f"torch; got {dtype.name} and {x.dtype.name} (cast them first)")
    items = []
    for t, x in zip(terms, operands):
        full = tuple(sizes[c] if d == 1 else d for c, d in zip(t, x.shape))
        if full != x._type.shape:
            x = broadcast_to(x, full)
        items.append((t, x))

    def needed_later(k):
        letters = set(out)
        for t, _ in items[k:]:
            letters |= set(t)
        return letters

    # sum out letters that appear in one operand only and not in the output
    for k, (t, x) in enumerate(items):
        others = set(out) | {c for j, (u, _) in enumerate(items) if j != k for c in u}
        drop = [i for i, c in enumerate(t) if c not in others]
        if drop:
            x = bind("reduce_sum", x, axes=tuple(drop))
            t = "".join(c for i, c in enumerate(t) if i not in drop)
        items[k] = (t, x)
    t, acc = items[0]
    for k in range(1, len(items)):
        u, y = items[k]
        keep = needed_later(k + 1)
        shared = [c for c in t if c in u]
        batch = [c for c in shared if c in keep]
        contract = [c for c in shared if c not in keep]
        acc = bind("dot_general", acc, y, contract=tuple((t.index(c), u.index(c)) for c in contract),
                   batch=tuple((t.index(c), u.index(c)) for c in batch))
        t = "".join(batch) + "".join(c for c in t if c not in shared) + \
            "".join(c for c in u if c not in shared)
        # letters only in this result and not needed later are summed away
        drop = [i for i, c in enumerate(t) if c not in keep]
        if drop:
            acc = bind("reduce_sum", acc, axes=tuple(drop))
            t = "".join(c for i, c in enumerate(t) if i not in drop)
    drop = [i for i, c in enumerate(t) if c not in out]
    if drop:
        acc = bind("reduce_sum", acc, axes=tuple(drop))
        t = "".join(c for i, c in enumerate(t) if i not in drop)
    for c in out:
        if c not in t:
            raise user_error(GcompError, f"einsum(): output subscript {c!r} does not appear in "
                             "the inputs")
    perm = tuple(t.index(c) for c in out)
    if perm != tuple(range(len(perm))):
        acc = bind("transpose", acc, perm=perm)
    return acc
