"""How much do Z_DR and K_DP tell about a cell's future beyond Z_H? A model-free check of the
radar nature run's truth, in the default and the control world.

At the CAPPI heights of ``radar.grid``, per seed of the nature run: the out-of-sample R^2 of
the ``--lead``-minute change of Z_H, predicted from Z_H level and trend (``--history``
minutes) alone and with Z_DR and K_DP added (``radar/information.py``), in two ways: at
cell centres, following cells that live through the lead (``gain``), and at echo pixels
followed along the steering flow, echo that dies within the lead included
(``echo_pixels``, what a nowcast faces). The gain is the information the network could
learn; in the control world it should be about 0.

    python benchmarks/radar_information.py [--configfile FILE [OVERLAY ...]] [--lead 30] [--history 30]
        [--seeds 0 1 2] [--name radar_information]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.common.config import deep_update, load_config  # noqa: E402
from radar import nature_run as nr  # noqa: E402
from radar.information import cell_records, information, lagrangian_information, lagrangian_records  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", nargs="+", default=[str(REPO / "config.yaml")],
                    help="config files, later ones override earlier ones")
    ap.add_argument("--lead", type=int, default=30, help="minutes ahead")
    ap.add_argument("--history", type=int, default=30, help="minutes back for the Z_H trend")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--name", default="radar_information")
    args = ap.parse_args(argv)
    overrides: dict = {}
    for extra in args.configfile[1:]:
        overrides = deep_update(overrides, yaml.safe_load(Path(extra).read_text()) or {})
    cfg = load_config(args.configfile[0], overrides or None)
    base = nr.settings(cfg)
    heights = list(cfg["radar"]["grid"]["heights_m"])
    step = base["step_minutes"]
    out = {"configfile": " ".join(Path(f).name for f in args.configfile), "lead_minutes": args.lead, "history_minutes": args.history,
           "heights_m": heights, "worlds": {}}
    t0 = time.time()
    for world_name, control in (("default", False), ("control", True)):
        rows = []
        for seed in args.seeds:
            s = copy.deepcopy(base)
            s["control"], s["seed"] = control, seed
            world = nr.World(s)
            rec = cell_records(world, heights, args.lead // step, args.history // step)
            res = information(rec) | {"seed": seed}
            lag = lagrangian_records(world, heights, args.lead // step, args.history // step)
            res["echo_pixels"] = lagrangian_information(lag)
            rows.append(res)
            print(world_name, res, flush=True)
        out["worlds"][world_name] = {"per_seed": rows,
                                     "mean_gain": round(float(np.mean([r["gain"] for r in rows])), 3),
                                     "mean_gain_echo_pixels": round(float(np.mean([r["echo_pixels"]["gain"]
                                                                                   for r in rows])), 3)}
    out["seconds"] = round(time.time() - t0, 1)
    path = REPO / "benchmarks" / "results" / f"{args.name}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: [v["mean_gain"], v["mean_gain_echo_pixels"]] for k, v in out["worlds"].items()}), "->", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
