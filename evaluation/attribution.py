"""What exp2's skill owes to region 2: permutation importance and occlusion of region-2 inputs.

For a trained joined-grid model (exp2) on the test split, each *variant* modifies
the model's inputs on region 2's cells only (the joined grid outside ``region1_mask``):

- **permutation** of one group of inputs: a variable (rain, temperature, dewpoint, wind = u
  and v, geopotential height), a level band (lower 1000-700 hPa, middle 500-300 hPa, upper
  250-100 hPa), or one input frame (its lag before the target time). The group's values on
  region 2 are taken from a partner test sample: whole frames move together, with the same
  partner for every region-2 cell, so each field keeps its spatial structure.
  ``attribution.repeats`` draws of the partners are averaged. Where the partners come from
  (``attribution.partners``):

  - ``conditional`` (default): one of the ``attribution.neighbours`` samples nearest in
    region-1 state (the region-1 area mean of every input channel and frame, standardised and
    reduced to the principal components that explain 90% of its variance), never one whose
    input window or target overlaps the sample's (at least input window + lead apart). The
    region-2 inputs then still agree with region 1 about what both regions share (the season,
    a large-scale flow over both), and only what region 2 says *beyond* region 1 is broken: the
    importance is the information the model draws from region 2 (conditional permutation
    importance, Strobl et al. 2008, BMC Bioinformatics 9:307). An input that carries nothing
    beyond region 1 scores about 0 however much the model leans on it;
  - ``marginal``: one fixed random permutation of all samples. Region 2 then also disagrees
    with region 1 about the season and the shared flow, inputs the model never saw together,
    so this measures how much the model *relies* on region 2, including on what region 1
    repeats (Hooker et al. 2021, Statistics and Computing 31:82);
- **occlusion**: every region-2 input replaced by its training mean (0 after the
  normalisation with training statistics);
- **all region 2 permuted**: every region-2 input of the sample taken from the partner sample.

Each variant is scored like the models (the primary score CRPS, mm / 12 h, of the bins
head's distribution, or the absolute error of a regression head's forecast, over the
region-1 loss cells with a valid observation; the evaluation also leaves out the cell-times
where persistence or climatology has no value, so its CRPS of the same model differs in the
third digit) and compared with the
unmodified inputs by the evaluation's paired block bootstrap (same blocks, resamples, seed and
confidence). The importance of a group is ``CRPS(variant) - CRPS(original)``: positive when the
model uses that information. Region 1's inputs are never modified.

- **relearned** (``attribution.relearn``, ``--relearn``): for a variable group g, exp2
  retrained with region 2 contributing every group but g (the experiment
  ``exp2_without_g``), compared with exp2 on the test split by the evaluation's comparison
  (``results/exp2_without_g/comparison.json``): ``CRPS(exp2_without_g) - CRPS(exp2)``.
  Permutation and occlusion measure how much *this model relies on* an input; an input
  that repeats what other inputs already carry (region-2 cells next to region 1 analysed
  from the same stations, the steering flow seen in both regions) is relied on without
  adding information, and breaking its link to the other inputs hurts. Retraining without
  it measures the information it *adds*. The relearned rows are scored over the
  evaluation's cells and every training seed, so their CRPS differs slightly from the
  permutation rows' own.

    python -m evaluation.attribution --checkpoint results/runs/exp2/seed0/checkpoint.pt \\
        --data data/processed/concat.zarr --out results/attribution
"""
from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass

import numpy as np
import torch

from evaluation.inputs import EvaluationError
from evaluation.metrics_json import versions
from pipeline.common import cli
from pipeline.common.atomic import atomic_path
from pipeline.common.config import config_hash
from pipeline.common.experiments import LEVEL_BANDS, VARIABLE_GROUPS, band_label, band_mask, group_mask
from pipeline.dataset import layout
from training import checkpoint as ckpt_io

log = logging.getLogger("evaluation.attribution")

PARTNERS = ("conditional", "marginal")
PCA_VARIANCE = 0.9  # share of the region-1 state's variance kept for matching conditional partners


@dataclass
class Variant:
    """One modification of region 2's inputs: channels x input frames, permuted or occluded."""
    kind: str  # variable | level band | lag | occlusion | all
    name: str
    channels: np.ndarray  # (C,) bool
    frames: np.ndarray  # (T,) bool
    occlude: bool = False


def variants(ds, steps: int, step_hours: int) -> list[Variant]:
    """Every variant for a store with ``ds``'s channel coordinates and ``steps`` input frames."""
    var, pressure = layout.channel_coordinates(ds)
    every_frame, every_channel = np.ones(steps, bool), np.ones(var.size, bool)
    out = [Variant("all", "all region-2 inputs", every_channel, every_frame),
           Variant("occlusion", "region 2 at its training mean", every_channel, every_frame, occlude=True)]
    for name in VARIABLE_GROUPS:
        chans = group_mask(var, (name,))
        if chans.any():
            out.append(Variant("variable", name, chans, every_frame))
    for name in LEVEL_BANDS:
        chans = band_mask(pressure, (name,))
        if chans.any():
            out.append(Variant("level band", band_label(name), chans, every_frame))
    for j in range(steps):
        frames = np.zeros(steps, bool)
        frames[j] = True
        out.append(Variant("lag", f"{(steps - j) * step_hours} h", every_channel, frames))
    return out


class ModifiedInputs(torch.utils.data.Dataset):
    """The items of a :class:`training.data.WindowDataset` with one variant applied to region 2."""

    def __init__(self, base, region2: np.ndarray, variant: Variant, partner: np.ndarray | None):
        self.base = base
        self.y = base.y
        self.partner = partner
        mask = (variant.frames[:, None, None, None] & variant.channels[None, :, None, None]
                & np.asarray(region2, bool)[None, None])
        self.mask = torch.from_numpy(mask)
        self.occlude = variant.occlude

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y, m = self.base[i]
        other = torch.zeros_like(x) if self.occlude else self.base[int(self.partner[i])][0]
        return torch.where(self.mask, other, x), y, m


def region1_features(dataset, region1: np.ndarray) -> np.ndarray:
    """(N, T * C) area means over region 1 of every input channel and frame of each sample:
    the state that conditional partners are matched on."""
    cells = torch.from_numpy(np.asarray(region1, bool))
    rows = []
    for i in range(len(dataset)):
        x = dataset[i][0]  # (T, C, H, W)
        rows.append(x[..., cells].float().mean(dim=-1).reshape(-1).numpy())
    return np.asarray(rows, np.float64)


def conditional_partners(features: np.ndarray, times, min_gap, neighbours: int, rng: np.random.Generator,
                         repeats: int = 1, variance: float = PCA_VARIANCE, block: int = 1024) -> list[np.ndarray]:
    """Partners for conditional permutation: for each sample, one of its ``neighbours`` nearest
    samples in region-1 state, drawn at random for each of ``repeats`` draws.

    The state is ``features`` (N, F), standardised per column and reduced to the leading principal
    components that explain ``variance`` of it; distances are Euclidean in that space. Samples whose
    times lie less than ``min_gap`` apart (so whose input windows or targets overlap) are never
    partners, nor is a sample its own. A sample keeps its region-1 inputs and gets region-2 inputs
    from a time whose region-1 state was like its own, so the part of region 2 that region 1 already
    tells (the season, a large-scale flow that covers both regions) stays consistent, and only what
    region 2 says beyond it is broken. Distances are computed ``block`` samples at a time, so memory
    grows as N x block (a decade of 12-hourly samples: about 60 MB).
    """
    f = np.asarray(features, np.float64)
    n = len(f)
    t = np.asarray(times, "datetime64[ns]")
    if n < 2 or len(t) != n:
        raise EvaluationError(f"conditional permutation needs 2 or more samples with times, got {n} and {len(t)}")
    sd = f.std(axis=0)
    z = (f[:, sd > 0] - f[:, sd > 0].mean(axis=0)) / sd[sd > 0]
    if z.shape[1]:
        u, s, _ = np.linalg.svd(z, full_matrices=False)
        share = np.cumsum(s ** 2) / max(float((s ** 2).sum()), 1e-300)
        keep = int(np.searchsorted(share, variance) + 1)
        z = u[:, :keep] * s[:keep]
    gap = np.timedelta64(min_gap).astype("timedelta64[ns]")
    # samples far enough from sample i: times sorted, so they lie outside one contiguous window
    order = np.argsort(t, kind="stable")
    ts = t[order]
    close = (np.searchsorted(ts, t + gap, side="left") - np.searchsorted(ts, t - gap, side="right"))
    if (close >= n).any():
        raise EvaluationError(f"conditional permutation: sample at {t[np.argmax(close >= n)]} has no other sample at "
                              f"least {min_gap} apart; too few samples in the split")
    k = int(min(max(1, neighbours), n - close.max()))
    near = np.empty((n, k), np.int64)
    sq = (z ** 2).sum(axis=1)
    for a in range(0, n, max(1, block)):
        b = min(n, a + max(1, block))
        d = sq[a:b, None] + sq[None, :] - 2.0 * (z[a:b] @ z.T)  # (block, N) squared distances
        d[np.abs(t[a:b, None] - t[None, :]) < gap] = np.inf
        near[a:b] = np.argsort(d, axis=1, kind="stable")[:, :k]
    return [near[np.arange(n), rng.integers(0, k, n)] for _ in range(max(1, repeats))]


def crps_rows(arrays: dict, edges, rain: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample CRPS sums and cell counts over ``cells`` (N, H, W) of region 1: of the
    distribution ``bin_prob`` (N, bins, H, W) when there is one, else of the deterministic
    ``rain_mm`` (N, H, W), whose CRPS is its absolute error (as in the evaluation)."""
    from evaluation.probabilistic import crps_binned
    from training import bins

    obs = np.where(cells, rain, 0.0)
    if "bin_prob" in arrays:
        lo, hi = bins.bounds(edges)
        crps = crps_binned(arrays["bin_prob"], lo, hi, obs, axis=1)
    else:
        crps = np.abs(np.asarray(arrays["rain_mm"], np.float64) - obs)
    return np.where(cells, crps, 0.0).sum(axis=(1, 2)), cells.sum(axis=(1, 2)).astype(np.float64)


def importance(base: tuple, variant: tuple, weights: np.ndarray, confidence: float) -> dict:
    """Paired bootstrap of ``CRPS(variant) - CRPS(base)`` from per-sample sums and counts."""
    from evaluation.bootstrap import paired_difference

    (sum_a, count), (sum_b, _) = base, variant
    point_a, point_b = sum_a.sum() / count.sum(), sum_b.sum() / count.sum()
    res_count = weights @ count
    out = paired_difference((weights @ sum_a) / res_count, (weights @ sum_b) / res_count, point_a, point_b,
                            confidence, relative=True)
    return {"crps": float(point_b), **{k: float(v) for k, v in out.items()}}


def _truth(ld, rs: slice, cs: slice) -> tuple[np.ndarray, np.ndarray]:
    """Observed rain (N, h, w) mm and the scored cells (valid, loss cells, finite) on region 1."""
    ds, target = ld.ds, ld.samples.target
    rain = ds["rain_mm"].isel(time=target).values[:, rs, cs].astype(np.float64)
    cells = (ds["valid"].isel(time=target).values[:, rs, cs].astype(bool)
             & ds["loss_mask"].values[rs, cs].astype(bool)[None] & np.isfinite(rain))
    return rain, cells


def attribute(checkpoint, data_path, repeats: int = 1, batch_size: int = 32, threads: int | None = None,
              progress: bool = True, partners: str = "conditional", neighbours: int = 10,
              split: str = "test") -> dict:
    """Importance of every variant (see the module docstring) on ``split``; the JSON-ready result.
    ``partners``: ``conditional`` (region-2 inputs from one of the ``neighbours`` samples nearest in
    region-1 state, :func:`conditional_partners`) or ``marginal`` (one random permutation of all
    samples)."""
    if partners not in PARTNERS:
        raise EvaluationError(f"partners {partners!r}: must be one of {list(PARTNERS)}")
    from evaluation.compare import plan_bootstrap
    from training.predict import load_for_prediction, predict_array, region1_window
    from training.train import default_threads

    torch.set_num_threads(threads or default_threads())
    ld = load_for_prediction(checkpoint, data_path, split)
    region1 = ld.ds["region1_mask"].values.astype(bool)
    if region1.all():
        raise EvaluationError(f"{data_path}: no region-2 cells (a region-1 store); give the joined grid's store")
    rs, cs = region1_window(region1, data_path)
    edges = ld.model.args.get("bin_edges_mm")
    rain, cells = _truth(ld, rs, cs)

    def score(dataset) -> tuple[np.ndarray, np.ndarray]:
        arrays = predict_array(ld.model, dataset, batch_size, ld.device, ld.tc.target_transform, progress)
        return crps_rows({k: v[..., rs, cs] for k, v in arrays.items()}, edges, rain, cells)

    boot = plan_bootstrap(ld.config, ld.samples.times)
    base = score(ld.dataset)
    rng = np.random.default_rng(ld.config["seed"])
    times = ld.samples.times.values
    matching = {"partners": partners, "neighbours": None, "min_gap_hours": None, "pca_variance": None}
    if partners == "conditional":
        gap_hours = (ld.fc.input_steps + ld.fc.lead_steps) * ld.fc.step_hours
        draws = conditional_partners(region1_features(ld.dataset, region1), times, np.timedelta64(gap_hours, "h"),
                                     neighbours, rng, repeats)
        matching.update(neighbours=int(neighbours), min_gap_hours=gap_hours, pca_variance=PCA_VARIANCE)
    else:
        draws = [rng.permutation(len(ld.samples)) for _ in range(max(1, repeats))]
    gaps = np.concatenate([np.abs(times[d] - times) for d in draws]) / np.timedelta64(1, "h")
    matching["median_partner_gap_hours"] = float(np.median(gaps))
    log.info(f"{partners} partners: median {matching['median_partner_gap_hours']:.0f} h apart")
    rows = []
    for v in variants(ld.ds, ld.fc.input_steps, ld.fc.step_hours):
        runs = [score(ModifiedInputs(ld.dataset, ~region1, v, p)) for p in (draws[:1] if v.occlude else draws)]
        mean = (np.mean([r[0] for r in runs], axis=0), runs[0][1])
        row = {"kind": v.kind, "name": v.name, "channels": int(v.channels.sum()), "frames": int(v.frames.sum()),
               **importance(base, mean, boot.weights, boot.confidence)}
        rows.append(row)
        log.info(f"{v.kind} {v.name}: CRPS {row['crps']:.4f} ({row['relative_pct']:+.1f}% "
                 f"[{row['relative_ci_low']:+.1f}, {row['relative_ci_high']:+.1f}])")
    return {"exp": str(ld.ck["exp"]), "seed": int(ld.ck["seed"]), "split": split, "samples": len(ld.samples),
            "primary_score": "crps", "crps_original": float(base[0].sum() / base[1].sum()),
            "repeats": max(1, repeats), "matching": matching, "bootstrap": boot.meta, "variants": rows,
            "provenance": {"checkpoint": str(checkpoint), "checkpoint_sha256": ckpt_io.sha256_of(checkpoint),
                           "data": str(data_path), "data_config_hash": str(ld.ds.attrs.get("config_hash", "")),
                           "train_config_hash": config_hash(ld.config), "versions": versions(),
                           "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}}


def relearn_rows(comparisons: dict[str, str]) -> list[dict]:
    """Rows of kind ``relearned``: group -> the comparison.json of ``exp2_without_group``
    against exp2; the primary score's difference, interval and p-value."""
    rows = []
    for group, path in comparisons.items():
        try:
            with open(path) as f:
                comp = json.load(f)
            primary = comp["primary_score"]
            row = next((r for r in comp["scores"] if r["score"] == primary and r.get("role") == "primary"), None)
        except (OSError, ValueError, KeyError) as err:
            raise EvaluationError(f"{path}: not a readable comparison.json ({err})") from err
        if row is None:
            raise EvaluationError(f"{path}: no primary-score ({primary}) row in its scores")
        seeds = comp.get("seeds") or {}
        n_seeds = [len(seeds.get(comp["a"], [])), len(seeds.get(comp["b"], []))]
        rows.append({"kind": "relearned", "name": group, "experiment": comp["b"], "reference": comp["a"],
                     "seeds": n_seeds,
                     "seeds_resampled": bool(comp["bootstrap"].get("resample_seeds")) and max(n_seeds) > 1,
                     "crps": row["b"], "difference": row["difference"], "ci_low": row["ci_low"],
                     "ci_high": row["ci_high"], "p_value": row["p_value"], "relative_pct": row["relative_pct"],
                     "relative_ci_low": row["relative_ci_low"], "relative_ci_high": row["relative_ci_high"]})
    return rows


def _split_label(res: dict) -> str:
    split = res.get("split", "test")  # results written before the split was recorded: test
    return "validation" if split == "val" else split


def report_lines(res: dict) -> list[str]:
    """A markdown table of the importances."""
    conf = f"{100 * res['bootstrap']['confidence']:g}%"
    split = _split_label(res)
    match = res.get("matching") or {"partners": "marginal"}
    how = (f"conditional permutation: each sample's region-2 inputs from one of its {match['neighbours']} nearest "
           f"samples in region-1 state, at least {match['min_gap_hours']} h apart (what region 2 adds beyond region 1)"
           if match["partners"] == "conditional" else
           "marginal permutation: region-2 inputs from any sample (reliance, including on what region 1 repeats)")
    lines = [f"# Attribution of {res['exp']}'s skill to region-2 inputs (seed {res['seed']}, {split} split)", "",
             f"CRPS with the original inputs: {res['crps_original']:.4f} mm / 12 h over {res['samples']} samples. "
             f"Importance = CRPS with the variant minus CRPS with the original inputs (positive: the model uses "
             f"that information); {conf} paired block bootstrap intervals; permutations averaged over "
             f"{res['repeats']} draws; {how}.", "",
             "| kind | inputs | CRPS | change | change % | interval % | p |", "|---|---|---|---|---|---|---|"]
    if any(r["kind"] == "relearned" for r in res["variants"]):
        rel = [r for r in res["variants"] if r["kind"] == "relearned"]
        n = max((max(r.get("seeds") or [1]) for r in rel), default=1)
        seeds = (f"{n} training seeds per experiment, resampled in the bootstrap, so the intervals include the "
                 "spread between training runs" if all(r.get("seeds_resampled") for r in rel) else
                 "one training seed per experiment: the intervals leave out the spread between training runs, "
                 "so a relearned row can differ from 0 by training-run noise alone (use several seeds, train.seeds)")
        lines[-2:-2] = ["Relearned rows: exp2 retrained without the group's region-2 inputs and compared with exp2: "
                        f"the information the group adds ({seeds}). Permuted and occluded rows: how much the "
                        "trained exp2 model relies on the inputs, which includes information repeated elsewhere "
                        "in its inputs.", ""]
    for r in res["variants"]:
        lines.append(f"| {r['kind']} | {r['name']} | {r['crps']:.4f} | {r['difference']:+.4f} | "
                     f"{r['relative_pct']:+.2f} | [{r['relative_ci_low']:+.2f}, {r['relative_ci_high']:+.2f}] | "
                     f"{r['p_value']:.3f} |")
    return lines


def figure(res: dict, path) -> None:
    """Horizontal bars of the relative importance with their intervals, one panel per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(r["kind"] for r in res["variants"]))
    fig, axes = plt.subplots(len(kinds), 1, figsize=(7, 1.2 + 0.45 * len(res["variants"])), squeeze=False, sharex=True,
                             gridspec_kw={"height_ratios": [sum(r["kind"] == k for r in res["variants"]) for k in kinds]})
    conf = f"{100 * res['bootstrap']['confidence']:g}%"
    for ax, kind in zip(axes[:, 0], kinds):
        rows = [r for r in res["variants"] if r["kind"] == kind]
        y = np.arange(len(rows))
        val = np.array([r["relative_pct"] for r in rows])
        err = np.array([[r["relative_pct"] - r["relative_ci_low"], r["relative_ci_high"] - r["relative_pct"]]
                        for r in rows]).T
        ax.barh(y, val, xerr=err, color="tab:blue", capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, [r["name"] for r in rows])
        ax.invert_yaxis()
        ax.set_title(kind + (" (input frame, hours before the target time)" if kind == "lag" else ""),
                     fontsize=9, loc="left")
    axes[-1, 0].set_xlabel(f"CRPS change (% of {res['exp']}; positive: the inputs help), {conf} interval")
    split = _split_label(res)
    partners = (res.get("matching") or {}).get("partners", "marginal")
    fig.suptitle(f"{res['exp']}: CRPS change when region-2 inputs are permuted ({partners}), occluded\nor dropped "
                 f"and relearned ({split} split)" if "relearned" in kinds else
                 f"{res['exp']}: CRPS change when region-2 inputs\nare permuted ({partners}) or occluded ({split} split)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(res: dict, out) -> None:
    from pathlib import Path

    with atomic_path(Path(out)) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "attribution.json").write_text(json.dumps(res, indent=1) + "\n")
        (tmp / "attribution.md").write_text("\n".join(report_lines(res)) + "\n")
        figure(res, tmp / "attribution.png")


def main(argv=None) -> int:
    ap = cli.parser("python -m evaluation.attribution", __doc__, progress=True,
                    threads="torch CPU threads (default: the usable cores; the rule's threads in the workflow)")
    ap.add_argument("--checkpoint", required=True, help="a joined-grid model's checkpoint.pt (exp2)")
    ap.add_argument("--data", required=True, help="the joined grid's processed store (concat.zarr)")
    ap.add_argument("--repeats", type=int, default=1, help="permutations averaged per variant (default 1)")
    ap.add_argument("--partners", choices=PARTNERS, default="conditional",
                    help="where a permuted sample's region-2 inputs come from: conditional (one of the --neighbours "
                         "samples nearest in region-1 state, at least an input window and lead apart; default) or "
                         "marginal (a random permutation of all samples)")
    ap.add_argument("--neighbours", type=int, default=10, help="candidate partners per sample (default 10)")
    ap.add_argument("--split", choices=("train", "val", "test"), default="test",
                    help="samples scored (default test; val, the validation split, for choosing settings)")
    ap.add_argument("--batch-size", type=int, default=32, help="samples per prediction batch (default 32)")
    ap.add_argument("--out", required=True, help="output folder (attribution.json, attribution.md, attribution.png)")
    ap.add_argument("--relearn", nargs="*", default=[], metavar="GROUP=COMPARISON",
                    help="relearned rows: a variable group and the comparison.json of exp2 retrained without it")

    def body(args) -> int:
        comparisons = {}
        for item in args.relearn:
            group, sep, path = item.partition("=")
            if not sep or group not in VARIABLE_GROUPS:
                raise EvaluationError(f"--relearn {item!r}: need GROUP=comparison.json with GROUP one of "
                                      f"{list(VARIABLE_GROUPS)}")
            comparisons[group] = path
        relearned = relearn_rows(comparisons)  # before the predictions: a bad file fails fast
        if args.neighbours < 1:
            raise EvaluationError(f"--neighbours {args.neighbours}: must be 1 or more")
        res = attribute(args.checkpoint, args.data, args.repeats, args.batch_size, args.threads, not args.no_progress,
                        args.partners, args.neighbours, args.split)
        res["variants"] += relearned
        write_outputs(res, args.out)
        log.info(f"wrote {args.out}")
        return 0

    return cli.run(ap, body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
