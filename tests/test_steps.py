"""pipeline.steps: several project command lines in one process, each as it runs alone."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

from pipeline import steps

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def test_package_entry_points_resolve_to_their_main_without_running_it():
    from pipeline.gridding.cli import main as grid_main
    from pipeline.ingest import main as ingest_main

    assert steps.entry_point("pipeline.gridding") is grid_main  # from its __main__, not run
    assert steps.entry_point("pipeline.ingest") is ingest_main


@pytest.mark.parametrize("step, message", [
    ("os.system rm", "'os.system' is not a module of this project"),
    ("pipeline.no_such_module --x", "no module 'pipeline.no_such_module'"),
    ("pipeline.common.atomic", "has no main(argv) entry point"),
    ("", "an empty step"),
])
def test_a_step_that_is_not_a_project_command_line_is_refused_before_anything_runs(step, message, capsys):
    assert steps.run(["pipeline.ingest --help", step]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_steps_run_in_order_and_the_first_failure_stops_the_run(tmp_path):
    """Two ingest steps in one process write the same file as the command line alone; a
    failing step's exit status and one-line error are the run's, and later steps never run."""
    files = sorted((DATA / "igra2").glob("*-data.txt"))[:1] or sorted((DATA / "igra2").iterdir())[:1]
    alone, together, never = tmp_path / "alone.nc", tmp_path / "together.nc", tmp_path / "never.nc"
    cmd = "pipeline.ingest soundings --format igra2 --no-progress --out {} " + " ".join(map(str, files))
    r = subprocess.run([sys.executable, "-m", *cmd.format(alone).split()], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "pipeline.steps", cmd.format(together),
                        f"pipeline.ingest soundings --format igra2 --out {tmp_path / 'x.nc'} {tmp_path / 'missing.txt'}",
                        cmd.format(never)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    assert "[step 1/3] exit status 0" in r.stderr and "[step 2/3] exit status 2" in r.stderr
    assert "error: " in r.stderr and "missing.txt" in r.stderr and "Traceback" not in r.stderr
    assert not never.exists() and "[step 3/3]" not in r.stderr
    a, b = xr.open_dataset(alone, engine="netcdf4"), xr.open_dataset(together, engine="netcdf4")
    xr.testing.assert_identical(a, b)
    assert a.sizes["profile"] > 0


DEFERRED_CHECK = """
import sys
import dask
import numpy as np
import xarray as xr
from pipeline import steps
steps.defer_unused_imports()
from xarray.backends.locks import get_dask_scheduler
from xarray.namedarray.pycompat import array_type
ds = xr.Dataset({"rain": (("time", "x"), np.arange(6.0).reshape(2, 3))}, coords={"x": [1, 2, 3]})
ds.to_netcdf(sys.argv[1], engine="netcdf4")
assert get_dask_scheduler() == "threaded", get_dask_scheduler()
print(sorted(m for m in ("pint", "sparse", "cupy", "distributed", "dask.array") if m in sys.modules))
import pint
assert array_type("pint") == (pint.Quantity,), array_type("pint")  # xarray's own answer once imported
import dask.array as da
assert array_type("dask") == (da.Array,), array_type("dask")
chunked = xr.Dataset({"rain": (("x",), da.arange(3.0, chunks=2))})
assert chunked.chunks and float(chunked.rain.sum().compute()) == 3.0
print("ok")
"""


def test_the_runner_defers_imports_the_steps_never_use(tmp_path):
    """After defer_unused_imports a Dataset is built and written without importing pint,
    sparse, cupy, dask.array or dask.distributed (dask itself imported), to the same bytes as
    without it; once pint or dask.array is imported, xarray recognises their arrays again."""
    deferred, plain = tmp_path / "deferred.nc", tmp_path / "plain.nc"
    r = subprocess.run([sys.executable, "-c", DEFERRED_CHECK, str(deferred)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["[]", "ok"]
    plain_check = DEFERRED_CHECK.replace("steps.defer_unused_imports()", "").split("assert get_dask")[0]
    r = subprocess.run([sys.executable, "-c", plain_check, str(plain)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    xr.testing.assert_identical(xr.open_dataset(deferred), xr.open_dataset(plain))
