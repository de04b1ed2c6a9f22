"""Integrity of intermediates: damaged, truncated or incomplete files are detected when read.

- **zarr stores** (processed data, predictions): the writer seals the finished store before
  it is renamed into place (:func:`seal_store`): ``integrity.json`` in the store's root lists
  every file of the store with its size and SHA-256. Readers call :func:`verify_store`, which
  names the first missing, damaged or unexpected-size file. (zarr itself reads a missing
  chunk as the fill value, silently; the manifest is what catches it.) The SHA-256 of the
  manifest (:func:`store_digest`) identifies the store's content in downstream provenance.
- **netCDF files** (interim soundings and gauges, gridded fragments): written with HDF5's
  Fletcher-32 checksum on every chunk of every data variable (:data:`NETCDF_CHECKSUM`), so
  a damaged chunk fails when read; a truncated file fails when opened. :func:`open_netcdf`
  turns either into one :class:`CorruptDataError` naming the file.
- **checkpoints**: torch's zip container carries a CRC-32 per record
  (``training.checkpoint.load`` names the file).

Every error says how to rebuild the file: delete it and rerun the workflow, which
rebuilds missing outputs.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from pathlib import Path

from pipeline.common import cli

MANIFEST = "integrity.json"
MANIFEST_FORMAT = "upstream-rain-integrity-1"
NETCDF_CHECKSUM = {"fletcher32": True}
_BLOCK = 1 << 22

# zarr lists the manifest (and Snakemake's marker in directory outputs) as an unknown object
# when it opens a store without consolidated metadata; both are expected there.
warnings.filterwarnings("ignore", message=r"Object at (integrity\.json|\.snakemake_timestamp) is not recognized")


class CorruptDataError(OSError):
    """An intermediate file is damaged, truncated or incomplete (message names it and the fix)."""


cli.register_error(CorruptDataError)


def rebuild_hint(path) -> str:
    return f"delete {path} and rerun the workflow to rebuild it"


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def _store_files(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob("*") if p.is_file() and p.relative_to(store).as_posix() != MANIFEST)


def seal_store(store) -> dict:
    """Write ``integrity.json`` (every file's size and SHA-256) into a finished store."""
    store = Path(store)
    files = {p.relative_to(store).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
             for p in _store_files(store)}
    manifest = {"format": MANIFEST_FORMAT, "files": files}
    (store / MANIFEST).write_text(json.dumps(manifest, indent=0, sort_keys=True))
    return manifest


def verify_store(store, required: bool = True) -> str:
    """Check every file of a sealed store against its manifest; returns :func:`store_digest`.

    A store without a manifest (written by another tool) raises unless ``required`` is
    false, in which case it is not checked and ``""`` is returned.
    """
    store = Path(store)
    if not store.is_dir():
        raise CorruptDataError(f"{store}: store not found")
    mpath = store / MANIFEST
    if not mpath.is_file():
        if required:
            raise CorruptDataError(f"{store}: no {MANIFEST} (the write did not finish, or another tool wrote "
                                   f"the store); {rebuild_hint(store)}")
        return ""
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise CorruptDataError(f"{mpath}: unreadable manifest ({err}); {rebuild_hint(store)}") from err
    for rel, want in files.items():
        p = store / rel
        if not p.is_file():
            raise CorruptDataError(f"{store}: file {rel} is missing; {rebuild_hint(store)}")
        size = p.stat().st_size
        if size != want["size"]:
            raise CorruptDataError(f"{store}: file {rel} has {size} bytes, {want['size']} expected; "
                                   f"{rebuild_hint(store)}")
        if file_sha256(p) != want["sha256"]:
            raise CorruptDataError(f"{store}: file {rel} is damaged (SHA-256 differs from {MANIFEST}); "
                                   f"{rebuild_hint(store)}")
    return store_digest(store)


def store_digest(store) -> str:
    """SHA-256 of a sealed store's manifest: one checksum of the whole content."""
    return file_sha256(Path(store) / MANIFEST)


@contextlib.contextmanager
def reading(path):
    """Turn a failure to open or read the netCDF ``path`` inside the block (a checksum
    mismatch, a truncated file: HDF5 and netCDF-C raise OSError or RuntimeError) into
    :class:`CorruptDataError` naming the file."""
    try:
        yield
    except CorruptDataError:
        raise
    except (OSError, RuntimeError) as err:
        raise CorruptDataError(f"{path}: cannot be read, damaged or truncated ({err}); {rebuild_hint(path)}") from err


def open_netcdf(path, load: bool = True, **kwargs):
    """``xr.open_dataset(path, engine="netcdf4")``, loaded (so every chunk checksum is
    verified) unless ``load`` is false; any failure to open or read becomes a
    :class:`CorruptDataError` naming the file."""
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise CorruptDataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise CorruptDataError(f"{path}: empty file (0 bytes); {rebuild_hint(path)}")
    with reading(path):
        ds = xr.open_dataset(path, engine="netcdf4", **kwargs)
        return ds.load() if load else ds
