"""Where dask work runs: local threads (the rule's ``{threads}``) or a distributed scheduler.

Every preprocessing entry point wraps its dask computations in :func:`dask_scheduler`.
By default dask's threaded scheduler runs with exactly ``threads`` workers, so a Snakemake
rule that asks for N threads uses N cores. When ``compute.dask_scheduler`` names the
address of a running ``dask.distributed`` scheduler (``tcp://host:8786``), a client is
connected for the duration of the block and every ``.compute()`` inside goes there.
"""
from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

import dask
import dask.threaded


def scheduler_address(config: dict) -> str | None:
    """The configured distributed scheduler address, or None for local threads."""
    return (config.get("compute") or {}).get("dask_scheduler") or None


@contextlib.contextmanager
def dask_scheduler(config: dict, threads: int = 1):
    """Context in which dask computations run on the configured scheduler.

    Yields the ``distributed.Client`` when ``compute.dask_scheduler`` is set, else None
    (dask's threaded scheduler with ``threads`` workers). On exit, also after an error,
    local tasks still running are waited for; with a distributed client, the client's
    outstanding tasks are cancelled before it closes.
    """
    threads = max(1, int(threads))
    address = scheduler_address(config)
    if address is None:
        # Our own pool, so that leaving the block (also on error) waits for tasks still in
        # flight: nothing keeps reading or writing files after the caller cleans up.
        pool = ThreadPoolExecutor(threads, thread_name_prefix="dask-local")
        try:
            # dask's threaded scheduler given as the function rather than its name
            # "threads": the same scheduler, without dask importing dask.distributed
            # to look for a client (about 0.5 s per process).
            with dask.config.set(scheduler=dask.threaded.get, num_workers=threads, pool=pool):
                yield None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    from distributed import Client

    logging.getLogger("pipeline.compute").info("dask: connecting to the distributed scheduler at %s", address)
    client = Client(address, set_as_default=False)
    try:
        with client.as_current(), dask.config.set(scheduler=client.get):
            yield client
    finally:
        futures = list(client.futures.values()) if hasattr(client, "futures") else []
        if futures:
            client.cancel(futures)
        client.close()
