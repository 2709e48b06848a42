"""A training's thread pools, sized from the CPUs its job was allocated.

Ray starts a worker with ``OMP_NUM_THREADS`` set from its CPUs, but the libraries a worker has already loaded
(numpy's OpenBLAS, imported by Ray itself) sized their pools when they loaded. ``use_cpus`` sets them all, and the
environment for whatever loads or starts later.
"""

from __future__ import annotations

import os
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def use_cpus(cpus: float) -> dict[str, int]:
    """Size every thread pool of this process to ``cpus`` (at least one), but never past the cores this process may
    run on (a node that declares more CPUs to Ray than it has would only make threads wait for each other); what
    each pool now holds, by library."""
    from threadpoolctl import threadpool_info, threadpool_limits

    threads = max(1, min(int(cpus), len(os.sched_getaffinity(0))))
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    threadpool_limits(threads)  # the BLAS and OpenMP pools loaded already
    pools = {"allocated": int(cpus), "cores": len(os.sched_getaffinity(0))} | {
        pool["internal_api"]: pool["num_threads"] for pool in threadpool_info()}
    if (torch := sys.modules.get("torch")) is not None:  # a custom training config's torch layers
        torch.set_num_threads(threads)
        pools["torch"] = torch.get_num_threads()
    return pools
