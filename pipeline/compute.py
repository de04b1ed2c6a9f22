"""Where dask work runs: local threads (the rule's ``{threads}``) or a distributed scheduler.

Every preprocessing entry point wraps its dask computations in :func:`dask_scheduler`.
By default dask's threaded scheduler runs with exactly ``threads`` workers, so a Snakemake
rule that asks for N threads uses N cores. When ``compute.dask_scheduler`` names the
address of a running ``dask.distributed`` scheduler (``tcp://host:8786``), a client is
connected for the duration of the block and every ``.compute()`` inside goes there.
"""
from __future__ import annotations

import contextlib
import sys

import dask


def scheduler_address(config: dict) -> str | None:
    """The configured distributed scheduler address, or None for local threads."""
    return (config.get("compute") or {}).get("dask_scheduler") or None


@contextlib.contextmanager
def dask_scheduler(config: dict, threads: int = 1):
    """Context in which dask computations run on the configured scheduler.

    Yields the ``distributed.Client`` when ``compute.dask_scheduler`` is set, else None
    (dask's threaded scheduler with ``threads`` workers).
    """
    threads = max(1, int(threads))
    address = scheduler_address(config)
    if address is None:
        with dask.config.set(scheduler="threads", num_workers=threads):
            yield None
        return
    from distributed import Client

    print(f"dask: connecting to the distributed scheduler at {address}", file=sys.stderr)
    client = Client(address, set_as_default=False)
    try:
        with client.as_current(), dask.config.set(scheduler=client.get):
            yield client
    finally:
        client.close()
