"""The metrics.json schema (see docs/metrics.md) and the Markdown report."""
from __future__ import annotations

import jsonschema

_num = {"type": ["number", "null"]}
_interval = {"type": "array", "items": _num, "minItems": 2, "maxItems": 2}
_scores_block = {
    "continuous": {"type": "object", "required": ["rmse", "mae", "bias", "correlation", "crps"]},
    "categorical": {"type": "object", "additionalProperties": {
        "type": "object",
        "required": ["hits", "misses", "false_alarms", "correct_negatives", "csi", "pod", "far",
                     "frequency_bias", "ets", "hk"]}},
    "fss": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": _num}},
}

_stratum = {"type": "object",
            "required": ["n_frames", "n_cell_times", "a", "b", "difference", "relative_pct", "relative_ci_low",
                         "relative_ci_high", "interval"],
            "properties": {k: _num for k in ("a", "b", "difference", "relative_pct", "relative_ci_low",
                                             "relative_ci_high")}}
_lag_series = {"type": "object", "required": ["correlation", "n_pairs"],
               "properties": {"correlation": {"type": "array", "items": _num},
                              "n_pairs": {"type": "array", "items": {"type": "integer"}}}}

_spread_over_draws = {"type": "object", "required": ["mean", "std", "min", "max"],
                      "properties": {k: _num for k in ("mean", "std", "min", "max")}}
_leaveout_score = {"type": "object", "required": ["rmse", "bias", "correlation", "n"],
                   "properties": {"rmse": _num, "bias": _num, "correlation": _num, "n": {"type": "integer"},
                                  "n_unanalysed": {"type": "integer"}}}
_gridding_leaveout = {
    "type": "object",
    "required": ["fraction", "repeats", "seed", "months", "stations", "withheld", "fields"],
    "properties": {
        "fraction": {"type": "number"}, "repeats": {"type": "integer"}, "seed": {"type": "integer"},
        "months": {"type": "array", "items": {"type": "string"}},
        "fields": {"type": "array", "items": {
            "type": "object",
            "required": ["field", "variable", "band", "units", "rmse", "bias", "correlation", "n", "per_repeat"],
            "properties": {"band": {"type": ["string", "null"]},
                           **{k: _spread_over_draws for k in ("rmse", "bias", "correlation", "n")},
                           "per_repeat": {"type": "array", "items": _leaveout_score}}}}}}

METRICS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "metrics.json of python -m evaluation.evaluate",
    "type": "object",
    "required": ["schema_version", "exp", "reference_exp", "units", "event_definition", "thresholds_mm",
                 "fss_windows", "samples", "bootstrap", "primary_score", "multiplicity", "models", "vs_baselines",
                 "verdicts", "provenance"],
    "properties": {
        "schema_version": {"const": 2},
        "primary_score": {"enum": ["rmse", "mae", "crps"]},
        "multiplicity": {"type": ["object", "null"]},
        "probabilistic": {"type": "object"},
        "exp": {"type": "string"},
        "reference_exp": {"type": ["string", "null"]},
        "units": {"const": "mm / 12 h"},
        "event_definition": {"type": "string"},
        "thresholds_mm": {"type": "array", "items": {"type": "number"}},
        "fss_windows": {"type": "array", "items": {"type": "integer"}},
        "samples": {"type": "object", "required": ["n_times", "time_start", "time_end", "times_sha256",
                                                   "cell_times_scored"]},
        "bootstrap": {"type": "object", "required": ["samples", "block_days", "block_frames", "scheme",
                                                     "confidence", "seed"]},
        "models": {"type": "object", "additionalProperties": {
            "type": "object",
            "required": ["kind", "continuous", "categorical", "fss"],
            "properties": {
                "kind": {"enum": ["experiment", "seed", "baseline"]},
                **_scores_block,
                "intervals": {"type": "object", "properties": {
                    "continuous": {"type": "object", "additionalProperties": _interval},
                    "categorical": {"type": "object", "additionalProperties": {
                        "type": "object", "additionalProperties": _interval}},
                    "fss": {"type": "object", "additionalProperties": {
                        "type": "object", "additionalProperties": _interval}}}},
            }}},
        "vs_baselines": {"type": "object"},
        "verdicts": {"type": "array", "items": {"type": "string"}},
        "provenance": {"type": "object", "required": ["config_hash", "data_config_hash", "versions", "created"]},
        "data_quality": {"type": "object", "required": ["target_frames_without_rain", "inputs", "ingest_qc"]},
        "flow_regimes": {"oneOf": [{"type": "null"}, {
            "type": "object",
            "required": ["score", "a", "b", "level_hpa", "region2_side", "sector_from_region2", "n_frames",
                         "n_unclassified", "speed_tercile_edges_ms", "sectors", "speed_terciles", "verdict",
                         "largest_gain_from_region2", "interval_excludes_zero"],
            "properties": {
                "sectors": {"type": "object", "required": ["N", "E", "S", "W"], "additionalProperties": _stratum},
                "speed_terciles": {"type": "object", "required": ["low", "mid", "high"],
                                   "additionalProperties": _stratum},
                "verdict": {"type": "string"}}}]},
        "lag_diagnostics": {"oneOf": [{"type": "null"}, {
            "type": "object",
            "required": ["frames", "lags_hours", "region2_leads_region1", "region1_leads_region2",
                         "region1_autocorrelation", "flow_from_region2", "peak_lag_hours", "along_axis_wind"],
            "properties": {"lags_hours": {"type": "array", "items": {"type": "integer"}},
                           **{k: _lag_series for k in ("region2_leads_region1", "region1_leads_region2",
                                                       "region1_autocorrelation", "flow_from_region2")}}}]},
        "gridding_leaveout": {"oneOf": [{"type": "null"}, _gridding_leaveout]},
    },
}


def validate_metrics(metrics: dict) -> None:
    jsonschema.validate(metrics, METRICS_SCHEMA)


def _f(v, fmt=".3f") -> str:
    return "n/a" if v is None else format(v, fmt)


def _ci(iv, fmt=".3f") -> str:
    if not iv or iv[0] is None:
        return ""
    return f" [{format(iv[0], fmt)}, {format(iv[1], fmt)}]"


def _spread(block, path) -> str:
    sp = block.get("spread")
    if not sp or len(block.get("seeds", [])) < 2:
        return ""
    d = sp
    for p in path:
        d = d[p]
    if d["std"] is None:
        return ""
    return f" ± {d['std']:.3f} (seeds {d['min']:.3f}..{d['max']:.3f})"


def _samples(metrics: dict) -> list[str]:
    """Which frames and cells were scored, and how the intervals were made."""
    lines = []
    exp, ref, s = metrics["exp"], metrics["reference_exp"], metrics["samples"]
    conf = f"{100 * metrics['bootstrap']['confidence']:g}%"
    lines += [
        "## Samples", "",
        f"Test target times {s['time_start']} .. {s['time_end']}: {s['n_times']} frames common to every run"
        + (f" of {exp} and {ref} (identical samples, times digest {s['times_sha256']})" if ref else
           f" of {exp} (times digest {s['times_sha256']})") + ".",
        f"Scored cell-times: {s['cell_times_scored']} of {s['cell_times_truth_valid']} with valid truth on "
        f"{s['cells_in_loss_mask']} region-1 cells (loss_mask = 1); excluded because persistence had no value: "
        f"{s['excluded_no_persistence']}, because climatology had none: {s['excluded_no_climatology']}. "
        f"Frames dropped as not common to all runs: {s['times_dropped_not_common']}.",
        f"Intervals: {conf} paired block bootstrap over time ({metrics['bootstrap']['samples']} resamples, "
        f"{metrics['bootstrap']['scheme']} blocks of {metrics['bootstrap']['block_days']:g} days = "
        f"{metrics['bootstrap']['block_frames']} frames){_seed_stage(metrics)}. Units mm / 12 h; an event is "
        "rain >= threshold.", "",
    ]
    return lines


def _seed_stage(metrics: dict) -> str:
    """How the intervals treat training seeds (the second stage of the bootstrap)."""
    exps = {k: v for k, v in metrics["models"].items() if v["kind"] == "experiment"}
    n = {k: len(v.get("seeds", [])) for k, v in exps.items()}
    if any(v.get("seeds_resampled") for v in exps.values()):
        counts = ", ".join(f"{k} {c}" for k, c in n.items())
        return (f"; each resample also draws every experiment's training seeds with replacement ({counts} seeds), "
                "so the intervals include the spread between training runs; every score is the mean of the "
                "seeds' own scores")
    if all(c == 1 for c in n.values()):
        return ("; one training seed per experiment, so the intervals leave out the spread between training "
                "runs (train several seeds, `make study`, to include it)")
    return "; the training seeds are fixed (`evaluation.resample_seeds: false`): the intervals leave out their spread"


def _data_quality(metrics: dict) -> list[str]:
    """Frames and samples that lacked data, and the ingest's bad-data counts (README, "Bad
    data that parses")."""
    dq = metrics.get("data_quality")
    if not dq:
        return []
    periods = "; ".join(dq["target_periods_without_rain"])
    lines = ["## Data quality", "",
             f"- Target frames with no valid rain on any loss-mask cell (`valid` false: not scored): "
             f"{dq['target_frames_without_rain']}" + (f" ({periods})" if periods else "") + "."]
    for region, lacks in dq.get("store_regions", {}).items():
        lines.append(f"- Data store, {region}: {lacks['frames_without_rain']['count']} of {dq['store_frames']} "
                     f"frames without any rain value, {lacks['frames_without_soundings']['count']} without any "
                     "upper-air analysis (their inputs are 0, the training mean).")
    for name, gaps in dq["inputs"].items():
        if gaps is not None:
            lines.append(f"- {name}: {gaps['without_rain']} predicted samples with an input frame without rain, "
                         f"{gaps['without_soundings']} without upper-air analysis, in a region of its grid.")
    qc = {k: v for kind in dq["ingest_qc"].values() for k, v in kind.items()}
    if qc:
        lines.append("- Ingest QC, all months: " + ", ".join(f"{k} {v}" for k, v in qc.items()) + ".")
    return lines + [""]


def _continuous(metrics: dict, models: dict) -> list[str]:
    """Continuous scores and the Brier tables of every model (seeds after)."""
    lines = []
    cont = ("rmse", "mae", "crps", "bias", "correlation")
    lines += ["## Continuous scores (mm / 12 h)", "",
              f"Primary score: {metrics['primary_score'].upper()}. CRPS is that of the predicted distribution "
              "for a probabilistic model (for an experiment with several seeds: the mean of its seeds' CRPS when "
              "the bootstrap resamples seeds, else that of its seed-averaged distribution) and the MAE "
              "for a deterministic one. The other scores of a probabilistic seed are those of its deterministic "
              "forecast, the quantile of its distribution named in the type column (with `model.quantile: auto`, "
              "fitted on that model's own validation split).", "",
              "| model | type | RMSE | MAE | CRPS | bias | correlation |", "|---|---|---|---|---|---|---|"]
    for name, b in models.items():
        iv = b.get("intervals", {}).get("continuous", {})
        cells = [f"{_f(b['continuous'][k])}{_ci(iv.get(k))}{_spread(b, ('continuous', k))}" for k in cont]
        lines.append(f"| {name} | {b.get('forecast_type', '')} | " + " | ".join(cells) + " |")
    seeds = [k for k, v in metrics["models"].items() if v["kind"] == "seed"]
    for name in seeds:
        b = metrics["models"][name]
        kind = b.get("forecast_type", "") + (f", {b['quantile']:g}-quantile" if b.get("quantile") is not None else "")
        lines.append(f"| {name} | {kind} | "
                     + " | ".join(_f(b["continuous"][k]) for k in cont) + " |")
    lines.append("")
    ens = {k: v["ensemble"] for k, v in models.items() if v.get("ensemble")}
    if ens:
        lines += ["Seed ensembles (the seed-averaged probabilities scored as one forecast, full sample, no "
                  "interval): " + "; ".join(f"{k} CRPS {_f(e['crps'])}" for k, e in ens.items()) + ".", ""]
    lines += ["## Brier score and Brier skill score", "",
              "Reference of the skill score: the training-period event frequency per cell and time of day. "
              "A deterministic forecast enters with probabilities 0 or 1.", "",
              "| model | " + " | ".join(f"BS {t:g} | BSS {t:g}" for t in metrics["thresholds_mm"]) + " |",
              "|---|" + "---|---|" * len(metrics["thresholds_mm"])]
    for name, b in models.items():
        iv = b.get("intervals", {}).get("categorical", {})
        cells = []
        for thr in metrics["thresholds_mm"]:
            c, t = b["categorical"][f"{thr:g}"], f"{thr:g}"
            cells += [f"{_f(c.get('brier'))}{_ci(iv.get(t, {}).get('brier'))}",
                      f"{_f(c.get('bss'))}{_ci(iv.get(t, {}).get('bss'))}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _categorical(metrics: dict, models: dict) -> list[str]:
    """Contingency counts and scores per threshold."""
    lines = []
    seeds = [k for k, v in metrics["models"].items() if v["kind"] == "seed"]
    for thr in metrics["thresholds_mm"]:
        t = f"{thr:g}"
        lines += [f"## Categorical scores, rain >= {t} mm / 12 h", "",
                  "| model | hits | misses | false alarms | correct negatives | CSI | POD | FAR | freq. bias | ETS | HK |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, b in list(models.items()) + [(k, metrics["models"][k]) for k in seeds]:
            c = b["categorical"][t]
            iv = b.get("intervals", {}).get("categorical", {}).get(t, {})
            counts = [_f(c[k], ".0f") for k in ("hits", "misses", "false_alarms", "correct_negatives")]
            sc = [f"{_f(c[k])}{_ci(iv.get(k))}" for k in ("csi", "pod", "far", "frequency_bias", "ets", "hk")]
            lines.append(f"| {name} | " + " | ".join(counts + sc) + " |")
        lines.append("")
    return lines


def _fss(metrics: dict, models: dict) -> list[str]:
    """FSS per model, threshold and window."""
    lines = []
    wins = [str(w) for w in metrics["fss_windows"]]
    lines += ["## Fractions Skill Score", "", "| model | threshold (mm) | " + " | ".join(f"{w} cells" for w in wins)
              + " |", "|---|---|" + "---|" * len(wins)]
    for name, b in models.items():
        for thr in metrics["thresholds_mm"]:
            t = f"{thr:g}"
            iv = b.get("intervals", {}).get("fss", {}).get(t, {})
            lines.append(f"| {name} | {t} | " + " | ".join(f"{_f(b['fss'][t][w])}{_ci(iv.get(w))}" for w in wins)
                         + " |")
    lines.append("")
    return lines


def _comparison(comparison: dict | None, conf: str) -> list[str]:
    """Every paired difference of the comparison, the primary score marked."""
    lines = []
    if comparison is None:
        return lines
    a, bname = comparison["a"], comparison["b"]
    mult = comparison.get("multiplicity") or {}
    lines += [f"## {bname} minus {a} (paired block bootstrap, {conf})", "",
              f"Primary score: {comparison.get('primary_score', 'rmse')}; it alone decides the verdict. "
              f"The other {mult.get('n_tests', 0)} comparisons are secondary: their p-values are "
              f"Holm-adjusted (family-wise level {mult.get('alpha', 0.05):.2g}), and 'better' there uses the "
              "adjusted p-value. Bias and frequency bias have no better direction.", "",
              f"| score | threshold (mm) | window | {a} | {bname} | difference | interval | p | Holm p | better |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in comparison["scores"]:
        primary = r.get("role") == "primary"
        better = {"a": a, "b": bname, "neither": "-"}[r["better"] if primary else r.get("better_holm", r["better"])]
        thr = "" if r["threshold_mm"] is None else f"{r['threshold_mm']:g}"
        win = "" if r["window"] is None else str(r["window"])
        score = f"**{r['score']}** (primary)" if primary else r["score"]
        lines.append(f"| {score} | {thr} | {win} | {_f(r['a'])} | {_f(r['b'])} | {_f(r['difference'], '+.3f')}"
                     f" | {_ci([r['ci_low'], r['ci_high']], '+.3f')} | {_f(r.get('p_value'))} | "
                     f"{'-' if primary else _f(r.get('p_holm'))} | {better} |")
    lines.append("")
    return lines


def _pct(v, fmt="+.1f") -> str:
    return "n/a" if v is None else format(v, fmt)


def _stratum_row(label: str, r: dict) -> str:
    iv = (f"[{_pct(r['relative_ci_low'])}, {_pct(r['relative_ci_high'])}]" if r.get("interval")
          else "-" if not r["n_frames"] else "(none: fewer frames than one block)")
    wind = ("" if r.get("mean_u_ms") is None else
            f"{r['mean_speed_ms']:.1f} ({r['mean_u_ms']:+.1f}, {r['mean_v_ms']:+.1f}); {r['mean_along_axis_ms']:+.1f}")
    return (f"| {label} | {r['n_frames']} | {wind} | {_f(r['a'])} | {_f(r['b'])} | {_pct(r['relative_pct'])} | "
            f"{iv} |")


def _flow_regimes(metrics: dict) -> list[str]:
    """Skill by flow regime: a table per sector and speed tercile, and the verdict line."""
    fr = metrics.get("flow_regimes")
    lines = ["## Skill by flow regime", ""]
    if not fr:
        why = ("no --upstream-data (the joined-grid store with the steering wind) was given"
               if metrics.get("lag_diagnostics") is None else "it compares with a reference experiment (--reference)")
        return lines + [f"Left out: {why}.", ""]
    a, b, name, bt = fr["a"], fr["b"], fr["score"].upper(), fr["bootstrap"]
    e1, e2 = fr["speed_tercile_edges_ms"]
    lines += [f"Test target frames stratified by the steering wind: {fr['steering']}. Region 2 lies "
              f"{fr['region2_side']} of region 1, so flow from region 2 towards region 1 is sector "
              f"{fr['sector_from_region2']} (sectors: {fr['sector_definition']}). {name} of {a} and {b} on each "
              f"stratum's frames; {b} - {a} in % of {a} with its {100 * bt['confidence']:g}% paired block-bootstrap "
              f"interval, resampling within the stratum ({bt['samples']} resamples, {bt['block_frames']}-frame "
              f"blocks). Unclassified frames (no analysed wind): {fr['n_unclassified']} of {fr['n_frames']}.", "",
              f"**{fr['verdict']}**", "",
              f"| stratum | frames | wind: speed (u, v); along region 2 -> 1 (m/s) | {a} {name} | {b} {name} | "
              f"{b} - {a} (%) | interval (%) |", "|---|---|---|---|---|---|---|"]
    for sec, r in fr["sectors"].items():
        label = f"from {sec}" + (" (from region 2)" if sec == fr["sector_from_region2"] else "")
        lines.append(_stratum_row(label, r))
    bounds = {"low": f"<= {_f(e1, '.1f')}", "mid": f"{_f(e1, '.1f')} .. {_f(e2, '.1f')}", "high": f"> {_f(e2, '.1f')}"}
    for ter, r in fr["speed_terciles"].items():
        lines.append(_stratum_row(f"speed {ter} ({bounds[ter]} m/s)", r))
    return lines + [""]


def _lags(metrics: dict) -> list[str]:
    """Lag correlations of the area-mean rain series."""
    lag = metrics.get("lag_diagnostics")
    lines = ["## Lag diagnostics (from the gridded data)", ""]
    if not lag:
        return lines + ["Left out: no --upstream-data (the joined-grid store) was given.", ""]
    w = lag["along_axis_wind"]
    lines += [f"Frames: {lag['frames']}, {lag['time_start']} .. {lag['time_end']} ({lag['n_frames']} frames). "
              f"Series: {lag['series']}. Pearson correlation of the following region's rain at t + lag with the "
              "leading region's rain at t. Peak of region 2 leading region 1: "
              f"{lag['peak_lag_hours']} h (r = {_f(lag['peak_correlation'])}). Steering wind along region 2 -> "
              f"region 1: mean {_f(w['mean_ms'], '+.1f')} m/s, from region 2 at {100 * w['fraction_from_region2']:.0f}% "
              "of the frames.", "",
              "| lag (h) | region 2 leads region 1 | region 1 leads region 2 | region-1 autocorrelation | "
              "region 2 leads, flow from region 2 | pairs |", "|---|---|---|---|---|---|"]
    keys = ("region2_leads_region1", "region1_leads_region2", "region1_autocorrelation", "flow_from_region2")
    for k, h in enumerate(lag["lags_hours"]):
        cells = " | ".join(_f(lag[key]["correlation"][k]) for key in keys)
        lines.append(f"| {h} | {cells} | {lag['region2_leads_region1']['n_pairs'][k]} |")
    return lines + [""]


def _gridding_leaveout(metrics: dict) -> list[str]:
    """How good is the truth: the leave-out validation of the gridding."""
    lo = metrics.get("gridding_leaveout")
    lines = ["## How good is the truth? Leave-out validation of the gridding", ""]
    if not lo:
        return lines + ["Left out: no --gridding-leaveout table was given.", ""]
    w = lo["withheld"][0] if lo["withheld"] else {"gauges": 0, "soundings": 0}
    lines += [f"{100 * lo['fraction']:g}% of the gauges ({w['gauges']} of {lo['stations']['gauges']}) and, "
              f"separately, of the sounding stations ({w['soundings']} of {lo['stations']['soundings']}) withheld "
              f"at random, {lo['repeats']} seeded draws (seed {lo['seed']}), months {', '.join(lo['months'])}; the "
              "analysis re-run from the other stations with the production parameters and scored at the withheld "
              "sites. Bias = analysis - observation; mean ± standard deviation over the draws; n: scored pairs "
              "per draw; not reached: withheld observations with no analysis value (too few stations near).", "",
              "| field | units | RMSE | bias | correlation | n | not reached |", "|---|---|---|---|---|---|---|"]

    def cell(d, fmt=".3f"):
        if d["mean"] is None:
            return "n/a"
        return format(d["mean"], fmt) + ("" if d["std"] is None else f" ± {format(d['std'], fmt.lstrip('+'))}")

    for f in lo["fields"]:
        lines.append(f"| {f['field']} | {f['units']} | {cell(f['rmse'])} | {cell(f['bias'], '+.3f')} | "
                     f"{cell(f['correlation'])} | {_f(f['n']['mean'], '.0f')} | "
                     f"{_f(f.get('n_unanalysed', {}).get('mean'), '.0f')} |")
    return lines + [""]


def render(metrics: dict, comparison: dict | None, figures: list[tuple[str, str]]) -> str:
    exp, ref = metrics["exp"], metrics["reference_exp"]
    conf = f"{100 * metrics['bootstrap']['confidence']:g}%"
    models = {k: v for k, v in metrics["models"].items() if v["kind"] != "seed"}
    lines = [f"# Verification of {exp}" + (f" against {ref}" if ref else ""), ""]
    lines += ["## Verdict", ""] + [f"- {v}" for v in metrics["verdicts"]] + [""]
    lines += _samples(metrics) + _data_quality(metrics) + _continuous(metrics, models) + _categorical(metrics, models)
    lines += _fss(metrics, models) + _comparison(comparison, conf) + _flow_regimes(metrics) + _lags(metrics)
    if "gridding_leaveout" in metrics:
        lines += _gridding_leaveout(metrics)
    lines += ["## Figures", ""]
    for caption, fname in figures:
        lines += [f"### {caption}", "", f"![{caption}]({fname})", ""]
    p = metrics["provenance"]
    lines += ["## Provenance", "",
              f"- config: {p.get('config')} (hash {p['config_hash']}); data: {p.get('data')} "
              f"(config_hash {p['data_config_hash']})",
              f"- runs: {', '.join(p.get('runs', []))}" + (f"; reference: {p['reference']}" if p.get("reference") else ""),
              "- versions: " + ", ".join(f"{k} {v}" for k, v in p["versions"].items()),
              f"- created: {p['created']}", ""]
    return "\n".join(lines)
