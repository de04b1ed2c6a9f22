"""radar.verify.compare and radar.report with several training seeds per experiment: the
point score is the mean over seeds of each seed's score, and each resample draws the time
blocks (the same for both models) and, independently per model, its seeds with
replacement. Worked examples: a hand-computed interval, a brute-force recomputation, and
the samples-only numbers of the code before seeds were resampled (one seed)."""
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from evaluation.bootstrap import block_bootstrap_weights, seed_draws
from radar import verify

DATA = Path(__file__).parent / "data"
ONE = {"thresholds_dbz": [30.0], "thresholds_mmh": [1.0], "fss_scales_km": [1.0], "block_length": 2,
       "bootstrap_samples": 400}


def _strip(d):
    """The comparison without what seeds added (per-seed values, seed counts, the wording)."""
    new = {"a_by_seed", "b_by_seed", "seeds_a", "seeds_b", "seeds_resampled", "interval", "caveat", "line"}
    return {k: (_strip(v) if isinstance(v, dict) else v) for k, v in d.items() if k not in new}


def test_one_seed_gives_the_numbers_of_the_samples_only_bootstrap():
    # compare_one_seed_before_seeds.json: written by radar.verify.compare before it took
    # several seeds, on exactly these fields (every score, interval, p-value and Holm p)
    cfg = {"thresholds_dbz": [20.0, 30.0, 40.0], "thresholds_mmh": [1.0, 5.0, 10.0],
           "fss_scales_km": [1.0, 3.0, 5.0], "block_length": 3, "bootstrap_samples": 200}
    rng = np.random.default_rng(11)
    obs = rng.gamma(2.0, 12.0, size=(12, 2, 16, 16))
    a = obs + rng.normal(0, 12.0, obs.shape)
    b = obs + rng.normal(0, 11.6, obs.shape)
    before = json.loads((DATA / "compare_one_seed_before_seeds.json").read_text())
    mask = np.ones((16, 16), bool)
    for fa, fb in ((a, b), ([a], [b])):
        out = verify.compare(obs, fa, fb, mask, cfg, seed=3, name_a="reflectivity", name_b="dualpol")
        assert _strip(out) == _strip(before)
        assert out["seeds_a"] == out["seeds_b"] == 1 and not out["seeds_resampled"]
    assert out["line"].startswith(before["line"])  # the old line, then the caveat
    assert out["line"].endswith("; one training seed per experiment, so the variability between training "
                                "runs is not in the interval")
    assert "(95% paired block bootstrap over samples, p = 0.020)" in out["line"]


def _same_samples(fields, n=6):
    """``n`` identical samples of one lead: resampling the samples changes no score."""
    return np.repeat(np.asarray(fields, float).reshape(1, 1, 2, 2), n, axis=0)


def test_two_seed_worked_example_interval_by_hand():
    # observed events (>= 30 dBZ) at 32 and 40; every sample is the same, so only the seed
    # stage moves the scores. a: hit, false alarm, miss -> CSI 1/3 (one seed).
    # b seed 0: two hits -> CSI 1; b seed 1: hit, miss -> CSI 1/2.
    obs = _same_samples([[32, 10], [40, 0]])
    a = _same_samples([[35, 31], [5, 0]])
    b0 = _same_samples([[35, 0], [45, 0]])
    b1 = _same_samples([[35, 0], [5, 0]])
    mask = np.ones((2, 2), bool)
    out = verify.compare(obs, [a], [b0, b1], mask, ONE, seed=7, name_a="reflectivity", name_b="dualpol")
    p = out["scores"]["csi@30dBZ"]["all"]
    assert p["a"] == pytest.approx(1 / 3) and p["b"] == pytest.approx(0.75)  # mean of 1 and 1/2
    assert p["b_by_seed"] == pytest.approx([1.0, 0.5]) and p["a_by_seed"] == pytest.approx([1 / 3])
    assert p["difference"] == pytest.approx(0.75 - 1 / 3)
    # resampled b: mean of 2 seeds drawn with replacement = 1 (1/4), 3/4 (1/2), 1/2 (1/4):
    # the 95% interval runs from the worst to the best seed
    assert p["ci_low"] == pytest.approx(0.5 - 1 / 3) and p["ci_high"] == pytest.approx(1.0 - 1 / 3)
    assert p["p_value"] == 0.0 and out["verdict"] == "significant improvement"
    assert out["seeds_resampled"] and out["caveat"] == ""
    assert "paired block bootstrap over samples and training seeds" in out["line"]
    assert "(means over 2 and 1 training seeds)" in out["line"]
    # the draws are those of evaluation.bootstrap.seed_draws (key: the model's name)
    d = seed_draws(400, 2, 7, "dualpol")
    frac = np.bincount(d.sum(1), minlength=3) / 400.0  # 0: both seed 0, 1: one each, 2: both seed 1
    assert frac[0] > 0.025 and frac[2] > 0.025
    # one seed of b: samples alone, a zero-width interval at the seed's own difference
    one = verify.compare(obs, [a], [b0], mask, ONE, seed=7)["scores"]["csi@30dBZ"]["all"]
    assert one["ci_low"] == pytest.approx(2 / 3) and one["ci_high"] == pytest.approx(2 / 3)


def test_a_seed_without_forecast_events():
    # b seed 1 forecasts no event: CSI 0 (0 hits over 2 misses) counts in the mean; its FAR
    # (0 / 0) is undefined and left out of the seed mean instead of making it undefined
    obs = _same_samples([[32, 10], [40, 0]])
    a = _same_samples([[35, 31], [5, 0]])
    b0 = _same_samples([[35, 31], [45, 0]])
    b1 = _same_samples([[0, 0], [0, 0]])
    out = verify.compare(obs, a, [b0, b1], np.ones((2, 2), bool), ONE, seed=1)
    p = out["scores"]["csi@30dBZ"]["all"]
    assert p["b_by_seed"] == pytest.approx([2 / 3, 0.0]) and p["b"] == pytest.approx(1 / 3)
    far = [verify.verify_nowcast(obs, f, np.ones((2, 2), bool), ONE)["scores"]["far@30dBZ"]["all"] for f in (b0, b1)]
    assert far[0] == pytest.approx(1 / 3) and far[1] is None
    assert verify.seed_mean([[1 / 3], [np.nan]])[0] == pytest.approx(1 / 3)
    assert np.isnan(verify.seed_mean([[np.nan], [np.nan]])[0])


def _csi(f, o, w=None):
    """CSI at 30 dBZ from per-sample counts (brute force; ``w``: sample weights)."""
    f, o = f >= 30.0, o >= 30.0
    hits = (f & o).sum(axis=(1, 2, 3)).astype(float)
    other = (f ^ o).sum(axis=(1, 2, 3)).astype(float)
    w = np.ones(len(f)) if w is None else w
    return (w @ hits) / (w @ (hits + other))


def test_two_stage_bootstrap_equals_brute_force():
    rng = np.random.default_rng(2)
    n, B = 9, 60
    obs = rng.gamma(2.0, 12.0, size=(n, 2, 8, 8))
    fa = [obs + rng.normal(0, 10.0, obs.shape) for _ in range(2)]
    fb = [obs + rng.normal(0, s, obs.shape) for s in (6.0, 9.0, 12.0)]
    cfg = {**ONE, "block_length": 3, "bootstrap_samples": B}
    out = verify.compare(obs, fa, fb, np.ones((8, 8), bool), cfg, seed=5, name_a="reflectivity", name_b="dualpol")
    p = out["scores"]["csi@30dBZ"]["all"]
    assert p["a"] == pytest.approx(np.mean([_csi(f, obs) for f in fa]))
    assert p["b"] == pytest.approx(np.mean([_csi(f, obs) for f in fb]))
    # the same block weights for both models; seeds drawn per model
    w = block_bootstrap_weights(n, 3, B, np.random.default_rng(5))
    da, db = seed_draws(B, 2, 5, "reflectivity"), seed_draws(B, 3, 5, "dualpol")
    diff = []
    for r in range(B):
        sa = np.mean([_csi(fa[s], obs, w[r]) for s in da[r]])
        sb = np.mean([_csi(fb[s], obs, w[r]) for s in db[r]])
        diff.append(sb - sa)
    diff = np.array(diff)
    assert p["ci_low"] == pytest.approx(np.quantile(diff, 0.025))
    assert p["ci_high"] == pytest.approx(np.quantile(diff, 0.975))
    le, ge = (diff <= 0).sum(), (diff >= 0).sum()
    assert p["p_value"] == pytest.approx(min(1.0, 2 * min(le, ge) / B))
    # per lead: the same construction on each lead's samples
    lead = out["scores"]["csi@30dBZ"]["by_lead"]
    for j in range(2):
        d = [np.mean([_csi(fb[s][:, j:j + 1], obs[:, j:j + 1], w[r]) for s in db[r]])
             - np.mean([_csi(fa[s][:, j:j + 1], obs[:, j:j + 1], w[r]) for s in da[r]]) for r in range(B)]
        assert lead["ci_low"][j] == pytest.approx(np.quantile(d, 0.025))


def _nowcast(obs, fcst, seed, experiment):
    S, L, H, W = obs.shape
    return xr.Dataset(
        {"nowcast": (("sample", "lead", "y", "x"), fcst.astype(np.float32)),
         "observed": (("sample", "lead", "y", "x"), obs.astype(np.float32)),
         "inputs": (("sample", "step", "y", "x"), obs[:, :1].repeat(3, axis=1).astype(np.float32)),
         "mask": (("y", "x"), np.ones((H, W), bool))},
        coords={"sample": np.arange(S), "lead": np.arange(1, L + 1), "x": np.arange(W) * 1000.0,
                "y": np.arange(H) * 1000.0},
        attrs={"experiment": experiment, "seed": seed, "epoch": 1})


@pytest.fixture()
def nowcast_files(tmp_path):
    rng = np.random.default_rng(4)
    obs = rng.gamma(2.0, 12.0, size=(10, 2, 24, 24)).astype(np.float32)  # 24 km: FSS at 21 km fits
    files = {}
    for e, noise in (("reflectivity", (11.0, 12.0)), ("dualpol", (10.0, 12.0, 13.0))):
        for sd, s in enumerate(noise):
            p = tmp_path / f"{e}_seed{sd}.nc"
            _nowcast(obs, obs + rng.normal(0, s, obs.shape).astype(np.float32), sd, e).to_netcdf(p)
            files.setdefault(e, []).append(str(p))
    return files


CFG = {"seed": 0, "radar": {"evaluation": {"fss_scales_km": [1.0, 5.0], "block_length": 3,
                                           "bootstrap_samples": 200}}}


def test_report_scores_every_seed(nowcast_files):
    from radar.report import evaluate, report_md

    m = evaluate(CFG, nowcast_files, ["persistence"])
    json.dumps(m, allow_nan=False)
    assert m["seeds"] == {"dualpol": [0, 1, 2], "reflectivity": [0, 1]}
    d = m["models"]["dualpol"]
    per = [xr.load_dataset(p) for p in nowcast_files["dualpol"]]
    csi = [_csi(x["nowcast"].values, x["observed"].values) for x in per]
    assert [d["by_seed"][str(s)]["csi@30dBZ"]["all"] for s in (0, 1, 2)] == pytest.approx(csi)
    assert d["scores"]["csi@30dBZ"]["all"] == pytest.approx(np.mean(csi))
    assert d["seed_spread"]["csi@30dBZ"]["sd"] == pytest.approx(np.std(csi, ddof=1))
    assert d["seed_spread"]["csi@30dBZ"]["min"] == pytest.approx(min(csi))
    assert len(d["scores"]["csi@30dBZ"]["by_lead"]) == 2
    assert "by_seed" not in m["models"]["persistence"]
    c = m["comparisons"]["dualpol_vs_reflectivity"]
    assert (c["seeds_a"], c["seeds_b"]) == (2, 3)
    assert c["scores"]["csi@30dBZ"]["all"]["b"] == pytest.approx(np.mean(csi))
    assert "mean over 3 and 2 training seeds" in m["headline"]
    assert "paired block bootstrap over samples and training seeds" in m["headline"]
    md = report_md(m)
    assert "| dualpol | 0: " in md and "paired block bootstrap over samples and training seeds" in md
    # one seed each: the numbers of one nowcast, and the caveat
    one = evaluate(CFG, {e: v[:1] for e, v in nowcast_files.items()}, [])
    assert one["models"]["dualpol"]["scores"]["csi@30dBZ"]["all"] == pytest.approx(csi[0])
    assert one["models"]["dualpol"]["seed_spread"]["csi@30dBZ"]["sd"] is None
    assert one["headline"].endswith("training runs is not in the interval")


def test_report_command_takes_one_argument_per_seed(nowcast_files, tmp_path):
    from radar.report import main

    # as rules/radar.smk passes them: EXP=FILE once per experiment and seed (the repository's config)
    args = [f"{e}={p}" for e, ps in nowcast_files.items() for p in ps]
    assert main(["--nowcasts", *args, "--baselines", "", "--out", str(tmp_path / "r")]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["seeds"]["dualpol"] == [0, 1, 2] and m["comparisons"]["dualpol_vs_reflectivity"]["seeds_resampled"]
