"""Faults: interrupted replacements, corrupt intermediates and a full disk never give garbage.

- atomic replacement of files and directories, with a kill at any point (real SIGKILLs of a
  writer process at fixed delays, and the rename-aside fallback interrupted in between);
- checksums: a zarr store with a missing or damaged chunk, a damaged or truncated netCDF,
  an empty checkpoint: each an error naming the file and how to rebuild it;
- disk full (injected ENOSPC): no partial output, a one-line error, and the rerun completes.
"""
from __future__ import annotations

import errno
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pipeline.common import atomic, integrity
from pipeline.common.atomic import DiskFullError, atomic_path
from pipeline.common.integrity import CorruptDataError

ROOT = Path(__file__).resolve().parents[1]


def small_dataset(value: float, n: int = 40) -> xr.Dataset:
    return xr.Dataset({"a": (("t", "y"), np.full((n, 50), value, np.float32))}, coords={"t": np.arange(n)})


def write_store(path: Path, value: float) -> None:
    with atomic_path(path) as tmp:
        small_dataset(value).chunk({"t": 10}).to_zarr(tmp, mode="w", consolidated=False)


# --------------------------------------------------------------------------- atomic replacement

def test_directory_replacement_keeps_the_old_output_until_the_new_one_is_complete(tmp_path):
    store = tmp_path / "out.zarr"
    write_store(store, 1.0)
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(store) as tmp:
            small_dataset(2.0).to_zarr(tmp, mode="w")
            raise RuntimeError("killed while writing")
    assert float(xr.open_zarr(store, consolidated=False)["a"].max()) == 1.0  # old output intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]  # no temporary left
    write_store(store, 2.0)
    assert float(xr.open_zarr(store, consolidated=False)["a"].max()) == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]


def test_rename_aside_fallback_interrupted_between_the_renames_is_recovered(tmp_path, monkeypatch):
    store = tmp_path / "out.zarr"
    write_store(store, 1.0)
    monkeypatch.setattr(atomic, "exchange", lambda a, b: False)  # a filesystem without RENAME_EXCHANGE
    real_replace = atomic.os.replace
    calls = []

    def kill_after_first_rename(src, dst):  # zarr's own writes also rename: only the store's moves count
        if Path(dst).name in ("out.zarr", ".old-out.zarr"):
            calls.append((Path(src).name, Path(dst).name))
            if len(calls) == 2:
                raise KeyboardInterrupt  # the process dies between moving the old store aside and the new one in
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", kill_after_first_rename)
    with pytest.raises(KeyboardInterrupt):
        write_store(store, 2.0)
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert calls[0] == ("out.zarr", ".old-out.zarr") and calls[1][1] == "out.zarr"
    assert not store.exists() and (tmp_path / ".old-out.zarr").is_dir()
    atomic.recover(store)  # what the next write of the output does first
    assert float(xr.open_zarr(store, consolidated=False)["a"].max()) == 1.0
    write_store(store, 3.0)
    assert float(xr.open_zarr(store, consolidated=False)["a"].max()) == 3.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]


WRITER = textwrap.dedent("""
    import sys, numpy as np, xarray as xr
    from pipeline.common.atomic import atomic_path
    out, value = sys.argv[1], float(sys.argv[2])
    ds = xr.Dataset({"a": (("t", "y"), np.full((400, 2000), value, np.float32))})
    print("ready", flush=True)
    with atomic_path(out) as tmp:
        ds.chunk({"t": 10}).to_zarr(tmp, mode="w", consolidated=False)
""")


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3, 0.6])
def test_sigkill_of_a_writer_leaves_the_previous_output_or_the_new_one(tmp_path, delay):
    """A writer replacing a store is killed with SIGKILL ``delay`` s into its write; the
    store is then the old one or the new one, complete and verified, never a mixture."""
    store = tmp_path / "out.zarr"
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", WRITER, str(store), "1"], check=True, env=env, cwd=tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store), "2"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    atomic.recover(store)
    integrity.verify_store(store)
    a = xr.open_zarr(store, consolidated=False)["a"].values
    assert a.shape == (400, 2000) and np.unique(a).size == 1 and a[0, 0] in (1.0, 2.0)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --------------------------------------------------------------------------- checksums

def test_a_missing_or_damaged_zarr_chunk_is_named(tmp_path):
    store = tmp_path / "p.zarr"
    write_store(store, 1.0)
    manifest = (store / integrity.MANIFEST).read_text()
    assert "a/c/1/0" in manifest and integrity.verify_store(store) == integrity.store_digest(store)
    chunk = store / "a" / "c" / "1" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match=r"p\.zarr: file a/c/1/0 is damaged .* delete .*p\.zarr and rerun"):
        integrity.verify_store(store)
    chunk.unlink()  # zarr alone would read the missing chunk as fill values
    with pytest.raises(CorruptDataError, match="file a/c/1/0 is missing"):
        integrity.verify_store(store)
    (store / integrity.MANIFEST).unlink()
    with pytest.raises(CorruptDataError, match="no integrity.json"):
        integrity.verify_store(store)
    assert integrity.verify_store(store, required=False) == ""


def test_training_refuses_a_damaged_processed_store_on_the_command_line(tmp_path):
    from tests.training.conftest import make_processed

    store = make_processed(tmp_path / "unsealed.zarr")
    sealed = tmp_path / "processed.zarr"
    with atomic_path(sealed) as tmp:
        xr.open_zarr(store).load().to_zarr(tmp, mode="w", consolidated=False)
    from training.data import open_processed

    assert open_processed(sealed).attrs["content_sha256"] == integrity.store_digest(sealed)
    victim = sorted((sealed / "x" / "c").rglob("*"))[-1]
    victim.write_bytes(victim.read_bytes()[:-7])  # truncated chunk
    cfg = tmp_path / "config.yaml"
    cfg.write_text((ROOT / "config.yaml").read_text())
    r = subprocess.run([sys.executable, "-m", "training.train", "--config", str(cfg), "--data", str(sealed),
                        "--exp", "exp1", "--seed", "0", "--out", str(tmp_path / "run"), "--no-progress"],
                       capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr
    assert str(sealed) in lines[0] and "bytes" in lines[0] and "rerun the workflow" in lines[0]


def _fragment(tmp_path) -> Path:
    from tests.dataset.dataset_helpers import dataset_config, write_fragments

    _, cfg = dataset_config(tmp_path)
    return Path(write_fragments(cfg, tmp_path / "gridded", ["2020-01"])[0])


def test_a_damaged_or_truncated_netcdf_is_named(tmp_path):
    from pipeline.dataset.assemble import _read_x

    path = _fragment(tmp_path)
    good = _read_x(str(path))
    raw = path.read_bytes()
    damaged = tmp_path / "damaged.nc"
    flipped = bytearray(raw)
    for k in range(len(raw) // 3, len(raw) // 3 + 64):  # inside the compressed x chunks
        flipped[k] ^= 0x5A
    damaged.write_bytes(bytes(flipped))
    with pytest.raises(CorruptDataError, match=r"damaged\.nc: cannot be read, damaged or truncated"):
        _read_x(str(damaged))
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptDataError, match=r"truncated\.nc: .*delete .*truncated\.nc and rerun"):
        integrity.open_netcdf(truncated)
    empty = tmp_path / "empty.nc"
    empty.write_bytes(b"")
    with pytest.raises(CorruptDataError, match=r"empty\.nc: empty file"):
        integrity.open_netcdf(empty)
    assert np.array_equal(_read_x(str(path)), good, equal_nan=True)  # the good file still reads


def test_an_empty_checkpoint_is_named(tmp_path):
    from training.checkpoint import CheckpointError, load

    ck = tmp_path / "checkpoint.pt"
    ck.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: empty checkpoint \(0 bytes\); delete"):
        load(ck)
    ck.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match=r"cannot load checkpoint safely .*rerun the workflow"):
        load(ck)


# --------------------------------------------------------------------------- disk full

def test_disk_full_leaves_no_partial_output_and_the_rerun_completes(tmp_path, monkeypatch, capsys):
    from pipeline.gridding import cli as grid_cli
    from tests.dataset.dataset_helpers import dataset_config, random_fragment

    _, cfg = dataset_config(tmp_path)
    ds = random_fragment(cfg, "2020-01", 1)
    out = tmp_path / "frag.nc"
    real = xr.Dataset.to_netcdf

    def full_disk(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89HDF partial")  # part of the file reached the disk
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full_disk)
    with pytest.raises(DiskFullError, match=r"frag\.nc: no space left on the device .*free space and rerun"):
        grid_cli.write_fragment(ds, out)
    assert list(tmp_path.glob("*frag.nc*")) == []  # neither the output nor a temporary
    monkeypatch.setattr(xr.Dataset, "to_netcdf", real)
    grid_cli.write_fragment(ds, out)  # space freed: the rerun completes
    back = integrity.open_netcdf(out)
    np.testing.assert_array_equal(back["x"].values, ds["x"].values)


def test_disk_full_on_the_command_line_is_one_line(tmp_path, monkeypatch, capsys):
    from pipeline.common import cli

    def body(args):
        with atomic_path(tmp_path / "out.bin") as tmp:
            tmp.write_bytes(b"x")
            raise OSError(errno.ENOSPC, "No space left on device")

    rc = cli.run(cli.parser("demo", "demo"), body, [])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and "out.bin: no space left" in err[0]
    assert list(tmp_path.iterdir()) == []
