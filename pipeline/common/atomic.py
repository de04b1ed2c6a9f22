"""Atomic writes: build at a temporary sibling path, then rename into place.

An interrupted run leaves at most a ``.tmp-*`` sibling, never a half-written output
that a rerun could mistake for complete.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path


@contextlib.contextmanager
def atomic_path(final: str | Path):
    """Yield a temporary path next to ``final``; on success rename it onto ``final``.

    Works for files and directories (zarr stores). On error the temporary is removed.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{final.name}")
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            old = final.with_name(f".old-{uuid.uuid4().hex[:8]}-{final.name}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def write_bytes_if_changed(path: str | Path, data: bytes) -> bool:
    """Write ``data`` atomically unless the file already holds exactly these bytes.

    Keeping an unchanged file untouched preserves its modification time, which is what
    lets Snakemake skip work on months whose raw files did not change.
    Returns True when the file was (re)written.
    """
    path = Path(path)
    if path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return True
