"""The dask scheduler context: local threads by default, a distributed scheduler when configured."""
from __future__ import annotations

import dask
import dask.threaded
import numpy as np
import pytest

from pipeline.common.compute import dask_scheduler
from pipeline.gridding.analysis import grid_month

from gridding_helpers import make_interim, write_config


def test_local_threads_follow_the_rule_threads(tmp_path):
    _, config = write_config(tmp_path)
    with dask_scheduler(config, threads=3):
        # dask's threaded scheduler, named by its function (no look-up of a distributed client)
        assert dask.config.get("scheduler") is dask.threaded.get
        assert dask.config.get("num_workers") == 3
        assert dask.config.get("pool")._max_workers == 3


def test_distributed_scheduler_gives_the_same_fragment(tmp_path):
    distributed = pytest.importorskip("distributed")
    _, local = write_config(tmp_path)
    snd, gau = make_interim(local, "2020-01", n_stations=20, n_gauges=80)
    with dask_scheduler(local, threads=2):
        expected = grid_month(snd, gau, local, "2020-01")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        _, remote = write_config(tmp_path, {"compute": {"dask_scheduler": cluster.scheduler_address}},
                                 name="remote.yaml")
        with dask_scheduler(remote, threads=1) as client:
            assert client is not None
            with distributed.get_task_stream(client) as stream:
                got = grid_month(snd, gau, remote, "2020-01")
        ran = [t["key"] for t in stream.data]
        assert sum("_grid_frames" in str(k) for k in ran) == 8, ran  # 62 frames in tasks of 8, on the cluster
    np.testing.assert_array_equal(got["x"].values, expected["x"].values)
