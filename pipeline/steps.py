"""Run several of the project's command lines in one Python process.

    python -m pipeline.steps "pipeline.ingest soundings --config C ... --out A.nc" \\
                             "pipeline.ingest gauges --config C ... --out B.nc" \\
                             "pipeline.gridding --config C --soundings A.nc --gauges B.nc ..."

Each argument is one command line: a module of this project (``pipeline.*``,
``training.*``, ``evaluation.*``) with a ``main(argv)`` entry point, and its arguments as
the shell would split them. The steps run in order, each exactly as its own command line
would run it (same arguments, same code, same outputs, each written atomically by the
step itself), and the first step that fails stops the run with its exit status (a
project error prints its one-line ``error: ...`` as the step's own command line would).

Why: a month of the workflow's data stages is a few short steps, each doing 1-2 s of
work; as separate processes every step also pays Python's and the libraries' start-up
(about 1 s each on 2 cores). The workflow runs a month's ingest and gridding through this
runner (rules/prepare.smk), keeping one output file per step and month, so adding a month
still re-runs only that month.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import shlex
import sys
import time
from pathlib import Path

PACKAGES = ("pipeline", "training", "evaluation")
# Optional array libraries that xarray probes (by importing them) on its first Dataset; the
# data steps never hold their arrays. Their types can only occur once they are imported:
# the module whose import makes the array type exist, per probed name. dask itself is
# imported by the steps (dask.delayed), but its array type lives in dask.array, whose import
# (with scipy.fft) costs about 0.5 CPU-s and which no data step uses.
PROBED_ARRAY_MODULES = {"pint": "pint", "sparse": "sparse", "cupy": "cupy", "dask": "dask.array"}
log = logging.getLogger("pipeline.steps")


class _ProbedUntilImported:
    """Stands in xarray's duck-array cache for ``name`` until ``trigger`` (the module that
    defines its array type) is imported: before, no array of that library can exist, so it
    answers "no such type" without importing it; after, it answers as xarray's own entry
    would."""

    def __init__(self, name: str, real_class, trigger: str | None = None):
        self._name, self._real_class, self._real = name, real_class, None
        self._trigger = trigger or name

    def __getattr__(self, attr):
        if self._real is None:
            if self._trigger not in sys.modules:
                from packaging.version import Version
                absent = {"module": None, "version": Version("0.0.0"), "type": (), "available": False}
                if attr in absent:
                    return absent[attr]
                raise AttributeError(attr)
            self._real = self._real_class(self._name)
        return getattr(self._real, attr)


def defer_unused_imports() -> None:
    """Spare a data step the imports it never uses (about 1.5 CPU-s per process): xarray's
    probes of pint/sparse/cupy/dask.array on the first Dataset, and its import of dask.distributed on
    the first write to find out whether a distributed client runs (none can run unless
    dask.distributed was imported). Answers stay xarray's own; only the imports are deferred."""
    try:
        from xarray.backends import locks, writers
        from xarray.namedarray import pycompat
    except ImportError:  # pragma: no cover - xarray is a dependency
        return
    cache = getattr(pycompat, "_cached_duck_array_modules", None)
    if isinstance(cache, dict):
        for name, trigger in PROBED_ARRAY_MODULES.items():
            if trigger not in sys.modules:
                cache.setdefault(name, _ProbedUntilImported(name, pycompat.DuckArrayModule, trigger))
    original = locks.get_dask_scheduler
    if getattr(original, "_defers_distributed", False):
        return

    def get_dask_scheduler(get=None, collection=None):
        if "distributed" in sys.modules or get is not None or collection is not None:
            return original(get, collection)
        # No distributed client without dask.distributed: xarray's answer is then
        # "multiprocessing" for dask's process scheduler and "threaded" otherwise.
        import dask

        multiprocessing = sys.modules.get("dask.multiprocessing")
        scheduler = dask.config.get("scheduler", None)
        if scheduler in ("processes", "multiprocessing") or (
                multiprocessing is not None and scheduler is multiprocessing.get):
            return "multiprocessing"
        return "threaded"

    get_dask_scheduler._defers_distributed = True
    for module in (locks, writers):
        if getattr(module, "get_dask_scheduler", None) is original:
            module.get_dask_scheduler = get_dask_scheduler


class StepError(ValueError):
    """A step that is not one of the project's command lines."""


def parse_step(text: str) -> tuple[str, list[str]]:
    """``"pipeline.ingest soundings --out X"`` -> ``("pipeline.ingest", ["soundings", "--out", "X"])``."""
    words = shlex.split(text)
    if not words:
        raise StepError("an empty step")
    module = words[0]
    if module.split(".")[0] not in PACKAGES or not all(p.isidentifier() for p in module.split(".")):
        raise StepError(f"step {text!r}: {module!r} is not a module of this project ({', '.join(PACKAGES)})")
    return module, words[1:]


def entry_point(module: str):
    """The module's ``main(argv)``; for a package, the ``main`` its ``__main__`` imports
    (read from its source: importing ``__main__`` would run it)."""
    try:
        mod = importlib.import_module(module)
        if not hasattr(mod, "main") and hasattr(mod, "__path__"):  # a package
            spec = importlib.util.find_spec(module + ".__main__")
            source = Path(spec.origin).read_text() if spec and spec.origin else ""
            found = re.search(r"^from\s+([\w.]+)\s+import\s+main\b", source, re.M)
            if found:
                mod = importlib.import_module(found.group(1))
    except ModuleNotFoundError as err:
        raise StepError(f"no module {module!r} ({err})") from err
    main = getattr(mod, "main", None)
    if not callable(main):
        raise StepError(f"module {module!r} has no main(argv) entry point")
    return main


def run(steps: list[str]) -> int:
    """Run the steps in order; the first non-zero exit status stops the run and is returned."""
    try:
        parsed = [parse_step(s) for s in steps]
        mains = [entry_point(m) for m, _ in parsed]
        defer_unused_imports()
    except StepError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    for i, ((module, argv), main) in enumerate(zip(parsed, mains), 1):
        t0 = time.perf_counter()
        print(f"[step {i}/{len(parsed)}] python -m {module} {shlex.join(argv)}", file=sys.stderr, flush=True)
        try:
            rc = main(argv)
        except SystemExit as exit_:  # argparse usage errors and explicit exits
            rc = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        rc = 0 if rc is None else int(rc)
        print(f"[step {i}/{len(parsed)}] exit status {rc} after {time.perf_counter() - t0:.2f} s",
              file=sys.stderr, flush=True)
        if rc != 0:
            return rc
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
