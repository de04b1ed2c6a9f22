# Shared definitions: paths, the effective config handed to the command-line steps, the
# months to process, and per-stage settings hashes that make Snakemake re-run a step
# only when a setting that step reads has changed.
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from pipeline.common.config import check_consistency, config_hash, period_months, sealed_config_text  # noqa: E402
from pipeline.common.errors import ConfigError  # noqa: E402
from pipeline.common.experiments import RELEARN_PREFIX, describe, experiments_config, frame_indices  # noqa: E402

try:
    check_consistency(config)
    # experiments: declared input sets (config key experiments; exp1 and exp2 by default)
    EXPERIMENTS = experiments_config(config)
    for _e in EXPERIMENTS.values():
        frame_indices(_e, **{k: config["frames"][k] for k in ("input_steps", "step_hours", "lead_steps")})
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}")

# Interpreter of the environment Snakemake runs in: every step uses the same packages.
PY = sys.executable
RAW = config["data"]["raw_dir"].rstrip("/")
WORK = config["data"]["work_dir"].rstrip("/")
SOUNDING_FORMAT = config["data"]["sounding_format"]
EXPERIMENT_GRID = {name: e.grid for name, e in EXPERIMENTS.items()}
SEEDS = config["train"]["seeds"]


def _effective_config_path():
    """Write the validated config (defaults filled) once, content-addressed.

    Steps read this file, so a step run by Snakemake sees exactly the config Snakemake
    validated (including --config overrides). The name carries the hash, so an existing
    file never changes; re-runs are driven by the per-stage `settings` params below. The
    file is sealed (pipeline.common.config.sealed_config_text): steps read it without
    validating it again.
    """
    h = config_hash(config)
    path = Path(WORK) / ".config" / f"config-{h}.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        try:
            text = sealed_config_text(config)
        except ConfigError as err:
            raise WorkflowError(f"Invalid configuration: {err}")
        tmp.write_text(text)
        tmp.replace(path)
    return str(path)


CFG = _effective_config_path()


def settings(*keys):
    """Hash of the config sections a step reads (a params entry: changes re-run the step)."""
    return config_hash(config, keys)


def discover_months():
    """Months to process: the config period for the nature run; for raw data, the months
    that have both a soundings folder and a gauge file in raw_dir, within the period."""
    period = period_months(config)
    if config["data"]["source"] == "synthetic":
        return period
    raw = Path(RAW)
    if not raw.is_dir():
        raise WorkflowError(f"data.raw_dir '{RAW}' does not exist (data.source is 'raw')")
    soundings = {p.name for p in (raw / "soundings").glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]") if p.is_dir()}
    gauges = {p.stem for p in (raw / "gauges").glob("[0-9][0-9][0-9][0-9]-[0-9][0-9].csv")}
    if config["data"].get("upper_air") == "gridded":  # upper air from the gridded files: the gauge months
        soundings = set(gauges)
    for m in sorted(soundings ^ gauges):
        kind = "gauges" if m in soundings else "soundings"
        logger.warning(f"month {m}: no {kind} in {RAW}; month skipped")
    months = sorted(m for m in soundings & gauges if m in set(period))
    if not months:
        raise WorkflowError(
            f"no month with both soundings/YYYY-MM/ and gauges/YYYY-MM.csv in '{RAW}' "
            f"within period {period[0]}..{period[-1]}"
        )
    return months


MONTHS = discover_months()


wildcard_constraints:
    month=r"\d{4}-\d{2}",
    grid="region1|concat",
    exp="|".join(EXPERIMENTS),
    seed=r"\d+",
