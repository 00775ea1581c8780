"""The ``gcomp`` logger and its categories, switched on with GCOMP_LOG=recompiles,passes,..."""

from __future__ import annotations

import logging
import os
import sys

CATEGORIES = ("recompiles", "passes", "cache", "graphs")
logger = logging.getLogger("gcomp")


def configure(spec: str | None = None) -> None:
    """Send the named categories (comma-separated, or 'all') to stderr at DEBUG level."""
    spec = os.environ.get("GCOMP_LOG", "") if spec is None else spec
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if "all" in names:
        names = list(CATEGORIES)
    for name in names:
        if name not in CATEGORIES:
            print(f"gcomp: unknown GCOMP_LOG category {name!r}; known: {', '.join(CATEGORIES)}",
                  file=sys.stderr)
            continue
        lg = logging.getLogger(f"gcomp.{name}")
        lg.setLevel(logging.DEBUG)
        if not any(getattr(h, "_gcomp", False) for h in lg.handlers):
            h = logging.StreamHandler(sys.stderr)
            h.setFormatter(logging.Formatter("[gcomp.%(name)s] %(message)s".replace(
                "gcomp.%(name)s", "%(name)s")))
            h._gcomp = True
            lg.addHandler(h)


def get(category: str) -> logging.Logger:
    return logging.getLogger(f"gcomp.{category}")
