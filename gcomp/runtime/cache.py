"""The persistent compilation cache: ``GCOMP_CACHE_DIR=dir`` or ``gcomp.config.cache_dir = dir``.

Note [Persistent cache]
~~~~~~~~~~~~~~~~~~~~~~~
gcomp's own cache (compiled.py) lives as long as the process. Across processes, JAX's persistent
compilation cache keeps XLA's executables on disk, keyed by the StableHLO module, the compile
options, the jaxlib version and the devices: a second process that traces an unchanged program
lowers it to the same module and reads the executable instead of running XLA, which is most of
the compile time of a real model (tracing and the passes are the rest). JAX only stores compiles
longer than a second and entries above a minimum size by default, so both minimums are set to 0
here: small programs are cached too.

The directory is read from GCOMP_CACHE_DIR at import and again before each compile (so a test or
a notebook can set it late), or set with ``gcomp.config.cache_dir``. JAX reports each lookup as a
monitoring event; a listener turns them into "persistent cache hit" / "persistent cache miss"
lines on the ``gcomp.cache`` logger (GCOMP_LOG=cache), one per executable, named after it where
JAX's caller says which module it is compiling. Like JAX's, the cache is trusted: an executable
read from it runs as native code, so do not point it at a directory others can write to.
"""

from __future__ import annotations

import os
import sys

import jax

from . import log

_logger = log.get("cache")
_state = {"dir": None, "listening": False}


def enable(path) -> None:
    """Use JAX's persistent compilation cache in ``path`` (created if missing)."""
    path = os.path.abspath(os.fspath(path))
    if path == _state["dir"]:
        return
    os.makedirs(path, exist_ok=True)
    if _state["dir"] is not None or jax.config.jax_compilation_cache_dir not in (None, path):
        # JAX opens its directory once (here, or its own JAX_COMPILATION_CACHE_DIR): start over
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _state["dir"] = path
    if not _state["listening"]:
        _state["listening"] = True
        jax.monitoring.register_event_listener(_on_event)


def from_env() -> None:
    """GCOMP_CACHE_DIR, if set: cheap enough to call before every compile."""
    path = os.environ.get("GCOMP_CACHE_DIR")
    if path:
        enable(path)


def _on_event(event: str, **_) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _logger.info("persistent cache hit%s: XLA compile skipped (%s)", _module(), _state["dir"])
    elif event == "/jax/compilation_cache/cache_misses":
        _logger.info("persistent cache miss%s: compiled and stored (%s)", _module(),
                     _state["dir"])


def _module() -> str:
    """The name of the module JAX is compiling, from its caller's frame, if it has one: the
    events carry no name, and this is a log line, so a missing name costs nothing."""
    f = sys._getframe(2)
    for _ in range(6):
        if f is None:
            break
        name = f.f_locals.get("module_name")
        if isinstance(name, str):
            return f" for {name}"
        f = f.f_back
    return ""


class Config:
    """``gcomp.config``: process-wide settings. ``cache_dir``: the persistent compilation cache
    (Note [Persistent cache]); None when off."""

    @property
    def cache_dir(self):
        return _state["dir"]

    @cache_dir.setter
    def cache_dir(self, path):
        if path is None:
            from ..core.dispatch import user_error
            from ..ir.errors import GcompError

            raise user_error(GcompError, "the persistent cache cannot be switched off once on; "
                             "start a new process without GCOMP_CACHE_DIR")
        enable(path)

    def __repr__(self):
        return f"gcomp.config(cache_dir={self.cache_dir!r})"


config = Config()
