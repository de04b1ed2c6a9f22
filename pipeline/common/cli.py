"""One command-line convention for every entry point of the project.

Every command builds its parser with :func:`parser` (``prog``, description, ``--version``,
``--log-level``, and ``--no-progress`` / ``--threads`` where it asks for them) and runs its
body through :func:`run`:

- a *project* error (a subclass of :class:`ProjectError`'s members: config, input-file,
  grid, normalisation and data errors) prints one line, ``error: <message>``, on stderr
  and exits with status 2: no traceback, since the message names the file, line, key or
  value;
- an unexpected error keeps its traceback (it is a bug, and the traceback is the report);
- logging goes to stderr, ``%(asctime)s %(name)s %(levelname)s %(message)s``, at the
  level of ``--log-level`` (default INFO).
- ``--no-progress`` drops progress messages: tqdm bars (the command passes the flag on)
  and records of loggers whose name ends with ``.progress``;
- ``--config`` is optional (:func:`add_config`, default: the repository's config.yaml,
  or the schema's defaults for commands that inspect a user's file) where a command can
  run on defaults; ``--grid`` is ``region1``, ``concat`` or a
  comma-separated list (:func:`grid_names`).

Usage::

    def main(argv=None) -> int:
        ap = cli.parser("python -m pipeline.gridding", __doc__, threads=True)
        ap.add_argument(...)
        return cli.run(ap, _main, argv)
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from pipeline.common import errors

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

#: The repository's config.yaml: ``--config``'s default where a command can run on defaults.
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"

#: The grids of the workflow; ``--grid`` takes one of them or a comma-separated list.
GRIDS = ("region1", "concat")

#: Progress messages are logged to loggers whose name ends with this; ``--no-progress`` drops them.
PROGRESS_SUFFIX = ".progress"

#: Errors whose message is the whole report (the file, line, key or value is named).
PROJECT_ERRORS: tuple[type[BaseException], ...] = (
    errors.ConfigError,
    errors.InvalidSoundingError,
    errors.InvalidGaugeError,
    errors.GridError,
    errors.NormalisationError,
    errors.NonFiniteDataError,
    errors.TrainingDivergedError,
    FileNotFoundError,  # a missing input; the message names the path
)


def register_error(cls: type[BaseException]) -> None:
    """Add a package's own error class (e.g. ``TrainingDataError``) to the one-line errors."""
    global PROJECT_ERRORS
    if cls not in PROJECT_ERRORS:
        PROJECT_ERRORS = PROJECT_ERRORS + (cls,)


def version() -> str:
    from pipeline import __version__

    return __version__


def parser(prog: str, doc: str | None, *, threads: bool | str = False, progress: bool = False) -> argparse.ArgumentParser:
    """An ArgumentParser with the shared flags; the description is the docstring's first paragraph.

    ``threads`` may be a string: the help text of ``--threads`` (when its default differs).
    """
    description = (doc or "").strip().split("\n\n")[0]
    invoked = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if invoked.startswith("upstream-rain-"):  # a console script of pyproject.toml's [project.scripts]
        prog = invoked
    ap = argparse.ArgumentParser(prog=prog, description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                    help="logging level on stderr (default INFO)")
    if threads:
        ap.add_argument("--threads", type=int, default=None,
                        help=threads if isinstance(threads, str) else
                        "CPU threads for this step (default: the usable cores; the rule's threads in the workflow)")
    if progress:
        ap.add_argument("--no-progress", action="store_true", help="no progress bar (the workflow's rules pass it)")
    return ap


def add_config(ap: argparse.ArgumentParser, required: bool = False, schema_defaults: bool = False) -> None:
    """``--config``: required, defaulting to the repository's config.yaml, or (``schema_defaults``)
    optional with ``None`` standing for the schema's defaults (:func:`pipeline.common.config.schema_defaults`)."""
    if required:
        ap.add_argument("--config", required=True, help="config YAML (validated against the schema, defaults filled)")
    elif schema_defaults:
        ap.add_argument("--config", default=None,
                        help="config YAML (validated against the schema, defaults filled; "
                             "default: the documented defaults of schemas/config.schema.yaml)")
    else:
        ap.add_argument("--config", default=str(DEFAULT_CONFIG),
                        help="config YAML (validated against the schema, defaults filled; "
                             "default: the repository's config.yaml)")


def grid_names(text: str) -> list[str]:
    """``--grid`` value: ``region1``, ``concat`` or a comma-separated list of them (argparse type)."""
    names = [g.strip() for g in text.split(",") if g.strip()]
    if not names or any(g not in GRIDS for g in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected {' or '.join(GRIDS)} (or a comma-separated list), got {text!r}")
    return names


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _not_progress(record: logging.LogRecord) -> bool:
    return not record.name.endswith(PROGRESS_SUFFIX)


def setup_logging(level: str = "INFO", progress: bool = True) -> None:
    logging.basicConfig(level=getattr(logging, level), format=LOG_FORMAT, stream=sys.stderr, force=True)
    if not progress:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_not_progress)


def run(ap: argparse.ArgumentParser, body: Callable[[argparse.Namespace], int | None], argv=None) -> int:
    """Parse ``argv``, set up logging, run ``body(args)``; project errors -> ``error: ...``, exit 2."""
    args = ap.parse_args(argv)
    setup_logging(getattr(args, "log_level", "INFO"), progress=not getattr(args, "no_progress", False))
    try:
        rc = body(args)
    except PROJECT_ERRORS as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    return 0 if rc is None else int(rc)


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
