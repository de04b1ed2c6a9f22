# Verification: scores, baselines, the comparison of an experiment with its reference
# (config key experiments: exp2 with exp1 by default), figures, report.


def _baseline_inputs():
    """Precomputed baselines (config key evaluation.extra_baselines) as named inputs. They
    need the joined grid, so only a comparison (results/exp2) scores them: an experiment
    without reference (results/exp1) stays on region 1."""
    return {f"baseline_{b}": f"results/baselines/{b}/predictions.zarr" for b in config["evaluation"]["extra_baselines"]}


def _baseline_args(wildcards, input):
    return " ".join(f"{b}={input['baseline_' + b]}" for b in config["evaluation"]["extra_baselines"])


def _run_inputs(exp):
    runs = [f"results/runs/{exp}/seed{s}" for s in SEEDS]
    return {
        "predictions": [f"{r}/predictions.zarr" for r in runs],
        "logs": [f"{r}/train_log.csv" for r in runs],
    }


def _names(with_reference):
    """Wildcard pattern of the declared experiments with (or without) a reference."""
    names = [n for n, e in EXPERIMENTS.items() if (e.reference is not None) == with_reference]
    return "|".join(names) or "(?!)"


def _describe(wildcards):
    return describe(EXPERIMENTS[wildcards.exp])


rule evaluate_experiment:
    input:
        data=f"{WORK}/processed/region1.zarr",
        predictions=lambda wc: _run_inputs(wc.exp)["predictions"],
        logs=lambda wc: _run_inputs(wc.exp)["logs"],
    output:
        report(
            directory("results/{exp}"),
            patterns=["{name}.png", "{name}.csv"],
            caption="../report/experiment.rst",
            category=lambda wc, params: params.title,
        ),
    wildcard_constraints:
        exp=_names(False),
    params:
        settings=settings("evaluation", "splits"),
        runs=lambda wc: " ".join(f"results/runs/{wc.exp}/seed{s}" for s in SEEDS),
        title=_describe,
    resources:
        mem_mb=2000,
    log:
        "logs/evaluate/{exp}.log",
    benchmark:
        "logs/benchmarks/evaluate_experiment/{exp}.tsv"
    shell:
        "{PY} -m evaluation.evaluate --config {CFG} --exp {wildcards.exp} --data {input.data}"
        " --runs {params.runs} --out {output} --no-progress > {log} 2>&1"


rule network_map:
    # The observing network (sounding stations and gauges of every month's interim files)
    # over the joined grid's rain coverage and loss mask; drawn into exp2's report.
    input:
        soundings=expand(f"{WORK}/interim/soundings/{{month}}.nc", month=MONTHS),
        gauges=expand(f"{WORK}/interim/gauges/{{month}}.nc", month=MONTHS),
        data=f"{WORK}/processed/concat.zarr",
    output:
        png="results/network/observing_network.png",
        csv="results/network/observing_network.csv",
    params:
        settings=settings("regions"),
    log:
        "logs/evaluate/network_map.log",
    shell:
        "{PY} -m evaluation.network --config {CFG} --soundings {input.soundings} --gauges {input.gauges}"
        " --data {input.data} --out {output.png} > {log} 2>&1"


rule compare_experiment:
    input:
        data=f"{WORK}/processed/region1.zarr",
        network="results/network/observing_network.png",
        reference=lambda wc: f"results/{EXPERIMENTS[wc.exp].reference}",
        # the joined grid: steering wind and region-2 rain for the skill by flow regime and
        # the lag diagnostics
        upstream=f"{WORK}/processed/concat.zarr",
        upstream_stats=f"{WORK}/processed/concat_stats.json",
        # leave-out validation of the gridding ("how good is the truth?", rules/leaveout.smk)
        gridding_leaveout=rules.gridding_leaveout.output.json,
        predictions=lambda wc: _run_inputs(wc.exp)["predictions"],
        logs=lambda wc: _run_inputs(wc.exp)["logs"],
        **_baseline_inputs(),
    output:
        report(
            directory("results/{exp}"),
            patterns=["{name}.png", "{name}.csv"],
            caption="../report/comparison.rst",
            category=lambda wc, params: params.title,
        ),
    wildcard_constraints:
        exp=_names(True),
    params:
        settings=settings("evaluation", "splits", "frames", "regions"),
        runs=lambda wc: " ".join(f"results/runs/{wc.exp}/seed{s}" for s in SEEDS),
        baselines=_baseline_args,
        title=_describe,
        exp=lambda wc: wc.exp,
        reference=lambda wc: EXPERIMENTS[wc.exp].reference,
    resources:
        mem_mb=2000,
    log:
        "logs/evaluate/{exp}.log",
    benchmark:
        "logs/benchmarks/compare_experiment/{exp}.tsv"
    shell:
        "{PY} -m evaluation.evaluate --config {CFG} --exp {wildcards.exp} --data {input.data}"
        " --runs {params.runs} --reference {input.reference} --baselines {params.baselines}"
        " --upstream-data {input.upstream} --upstream-stats {input.upstream_stats} --network {input.network}"
        " --gridding-leaveout {input.gridding_leaveout}"
        " --out {output} --no-progress > {log} 2>&1"
