"""What ``gcomp bench`` shows: the table, the JSON file, the bar chart, the progress line."""

from __future__ import annotations

import json
import sys
import threading

from .measure import short

COLUMNS = [("target", 12), ("variant", 14), ("median ms", 10), ("min-max ms", 17),
           ("vs eager", 9), ("compile s", 10), ("RSS +MB", 8), ("XLA temp/in/out", 19),
           ("exes", 5), ("rounds", 9), ("first value", 12)]


def table(results) -> str:
    """One line per variant of every result, then the errors, one line each."""
    widths = [w for _, w in COLUMNS]
    widths[0] = max([widths[0]] + [len(res.name) for res in results])
    lines = [_line([name for name, _ in COLUMNS], widths)]
    errors = []
    for res in results:
        for i, r in enumerate(res.rows):
            lines.append(_line(_cells(res.name if i == 0 else "", r), widths))
            if r.error:
                errors.append(f"{res.name} {r.name}: {short(r.error, 200)}")
    if errors:
        lines += ["", *errors]
    return "\n".join(lines)


def _line(cells, widths) -> str:
    out = []
    for i, (cell, width) in enumerate(zip(cells, widths)):
        out.append(f"{cell:<{width}}" if i < 2 else f"{cell:>{width}}")
    return " ".join(out).rstrip()


def _cells(target: str, r) -> list[str]:
    if r.median_ms is None:
        return [target, r.name, "error"] + [""] * (len(COLUMNS) - 3)
    xla = r.xla or {}
    mem = "-"
    if xla.get("temp_bytes") is not None:
        mem = "/".join(_size(xla[k]) for k in ("temp_bytes", "argument_bytes", "output_bytes"))
    exes = len(xla["executables"]) if "executables" in xla else "-"
    first = "-" if r.first_value is None else f"{r.first_value:.5g}"
    return [target, r.name, _ms(r.median_ms), f"{_ms(r.min_ms)}-{_ms(r.max_ms)}",
            f"{r.vs_eager:.2f}" if r.vs_eager is not None else "-",
            f"{r.compile_s:.2f}" if r.compile_s is not None else "-",
            f"{r.rss_mb:.1f}" if r.rss_mb is not None else "-", mem, str(exes),
            f"{r.rounds}x{r.steps}", first]


def _size(n: int) -> str:
    """Bytes as 0, 512B, 68K, 1.2M, 3.4G."""
    for unit, scale in (("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if n >= scale:
            v = n / scale
            return f"{v:.1f}{unit}" if v < 10 else f"{v:.0f}{unit}"
    return f"{n}B" if n else "0"


def _ms(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def write_json(path: str, results, settings: dict) -> None:
    from .runner import environment

    doc = {**environment(), "settings": settings, "targets": [r.to_json() for r in results]}
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")


def plot(path: str, results) -> None:
    """A bar chart of the median ms per call of every variant, grouped by target, with the
    min-max range as error bars, on a log scale (variants differ by orders of magnitude)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    variants = []
    for res in results:
        variants += [r.name for r in res.rows if r.name not in variants]
    width = 0.8 / max(1, len(variants))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(results) + 2), 4.5))
    for j, v in enumerate(variants):
        xs, meds, lo, hi = [], [], [], []
        for i, res in enumerate(results):
            r = next((r for r in res.rows if r.name == v and r.median_ms is not None), None)
            if r is not None:
                xs.append(i + (j - (len(variants) - 1) / 2) * width)
                meds.append(r.median_ms)
                lo.append(r.median_ms - r.min_ms)
                hi.append(r.max_ms - r.median_ms)
        ax.bar(xs, meds, width, yerr=[lo, hi], label=v, capsize=2)
    ax.set_xticks(range(len(results)), [r.name for r in results])
    ax.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("median ms per call (log scale)")
    ax.set_title("gcomp bench: lower is better")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


class Progress:
    """A one-line tqdm display on stderr (``name: what runs now [elapsed]``), refreshed twice a
    second so a slow compile shows its time passing; off when stderr is not a terminal, when
    ``enabled`` is False, or without tqdm. Calling it sets what runs now."""

    def __init__(self, name: str, enabled=None):
        self.name = name
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
        self.bar = None
        self._stop = threading.Event()

    def __enter__(self):
        if self.enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return self
            self.bar = tqdm(total=None, bar_format="{desc} [{elapsed}]", file=sys.stderr,
                            leave=False, desc=self.name)
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        return self

    def __call__(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(f"{self.name}: {text}", refresh=True)

    def _tick(self):
        while not self._stop.wait(0.5):
            self.bar.refresh()

    def __exit__(self, *exc):
        self._stop.set()
        if self.bar is not None:
            self._thread.join(timeout=1.0)
            self.bar.close()
        return False
