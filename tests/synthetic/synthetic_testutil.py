"""Helpers of the synthetic tests: small configs and file listings."""
from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.common.config import load_config

REPO = Path(__file__).resolve().parents[2]
SMALL = {"period": {"start": "2020-01", "end": "2020-03"},
         "synthetic": {"n_sounding_stations": 8, "n_gauges": 24, "seed": 7}}


def small_config(**period) -> dict:
    over = {"period": {**SMALL["period"], **period}, "synthetic": dict(SMALL["synthetic"])}
    return load_config(REPO / "config.yaml", over)


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def files_of(root: Path, months=None) -> dict[str, bytes]:
    """Relative path -> bytes of the month files (and network files) under root."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or rel.startswith("truth.zarr"):
            continue
        if months is not None and not any(m in rel for m in months) and "/" in rel and \
                rel not in ("soundings/igra2-station-list.txt", "gauges/stations.csv"):
            continue
        out[rel] = p.read_bytes()
    return out
