"""The workloads the benchmark scripts share: they live in the package, gcomp/bench/workloads.py
(models, data, the training step), with the timing helpers in gcomp/bench/measure.py."""

from gcomp.bench.measure import (  # noqa: F401
    cores,
    error_text,
    gcomp_sync,
    load_note,
    measure,
    short,
    versions,
)
from gcomp.bench.workloads import *  # noqa: F401, F403
