"""Atomic writes: build at a temporary sibling path, then move it into place in one step.

An interrupted run (killed, disk full) leaves at most a ``.tmp-*`` sibling, never a
half-written output that a rerun could mistake for complete, and never loses the previous
output:

- a file replaces the old one with one ``rename`` (atomic on POSIX);
- a directory (zarr store) replaces the old one with one atomic exchange of the two paths
  (Linux ``renameat2(RENAME_EXCHANGE)``); the old content, now at the temporary path, is
  then removed. Where the exchange is unsupported (another OS or filesystem), the old
  directory is first renamed aside to ``.old-<name>``; a kill between the two renames
  leaves that aside copy, which the next write of the same output (or :func:`recover`)
  puts back.

Leftover temporaries of earlier interrupted writes of the same output are removed when the
output is next written. A finished zarr store is sealed with a manifest of its files'
checksums before it is moved into place (:mod:`pipeline.common.integrity`). A write that fails because the disk is full raises
:class:`DiskFullError` (one line on the command line) after removing its temporary.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import shutil
import uuid
from pathlib import Path

from pipeline.common import cli

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """No space left while writing an output (message names the output)."""


cli.register_error(DiskFullError)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _aside(final: Path) -> Path:
    return final.with_name(f".old-{final.name}")


def recover(final: str | Path) -> None:
    """Finish or undo an interrupted directory replacement of ``final``, and remove the
    temporaries of interrupted writes (one writer per output: none is in use)."""
    final = Path(final)
    aside = _aside(final)
    if aside.exists():
        if final.exists():
            _remove(aside)  # the new output was in place: only the clean-up was missing
        else:
            os.replace(aside, final)  # killed between the renames: the previous output returns
    for tmp in final.parent.glob(f".tmp-????????-{final.name}"):
        _remove(tmp)


@functools.lru_cache(maxsize=1)
def _renameat2():
    return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False where the OS or filesystem cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _replace_dir(tmp: Path, final: Path) -> None:
    if exchange(tmp, final):
        _remove(tmp)  # tmp now holds the previous output
        return
    aside = _aside(final)
    os.replace(final, aside)
    os.replace(tmp, final)
    _remove(aside)


@contextlib.contextmanager
def atomic_path(final: str | Path):
    """Yield a temporary path next to ``final``; on success move it onto ``final``.

    Works for files and directories (zarr stores). On error the temporary is removed.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover(final)
    tmp = final.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{final.name}")
    try:
        yield tmp
        if tmp.is_dir() and (tmp / "zarr.json").is_file():
            from pipeline.common.integrity import seal_store

            seal_store(tmp)  # readers verify the store against this manifest
        if final.is_dir() and not final.is_symlink() and tmp.is_dir():
            _replace_dir(tmp, final)
        else:
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            os.replace(tmp, final)
    except OSError as err:
        if err.errno in _NO_SPACE and not isinstance(err, DiskFullError):
            full = DiskFullError(f"{final}: no space left on the device while writing it ({err.strerror}); "
                                 "nothing was written: free space and rerun")
            full.errno = err.errno
            raise full from err
        raise
    finally:
        _remove(tmp)


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
