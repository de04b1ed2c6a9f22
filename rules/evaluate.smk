# Verification: scores, baselines, exp2-vs-exp1 bootstrap comparison, figures, report.


def _baseline_inputs():
    """Precomputed baselines (config key evaluation.extra_baselines) as named inputs. They
    need the joined grid, so only the comparison (results/exp2) scores them: results/exp1
    alone stays on region 1."""
    return {f"baseline_{b}": f"results/baselines/{b}/predictions.zarr" for b in config["evaluation"]["extra_baselines"]}


def _baseline_args(wildcards, input):
    return " ".join(f"{b}={input['baseline_' + b]}" for b in config["evaluation"]["extra_baselines"])


def _run_inputs(exp):
    runs = [f"results/runs/{exp}/seed{s}" for s in SEEDS]
    return {
        "predictions": [f"{r}/predictions.zarr" for r in runs],
        "logs": [f"{r}/train_log.csv" for r in runs],
    }


rule evaluate_exp1:
    input:
        data=f"{WORK}/processed/region1.zarr",
        **_run_inputs("exp1"),
    output:
        report(
            directory("results/exp1"),
            patterns=["{name}.png", "{name}.csv"],
            caption="../report/exp1.rst",
            category="exp1: region 1 only",
        ),
    params:
        settings=settings("evaluation", "splits"),
        runs=" ".join(f"results/runs/exp1/seed{s}" for s in SEEDS),
    resources:
        mem_mb=2000,
    log:
        "logs/evaluate/exp1.log",
    benchmark:
        "logs/benchmarks/evaluate_exp1/exp1.tsv"
    shell:
        "{PY} -m evaluation.evaluate --config {CFG} --exp exp1 --data {input.data}"
        " --runs {params.runs} --out {output} --no-progress > {log} 2>&1"


rule compare_exp2:
    input:
        data=f"{WORK}/processed/region1.zarr",
        reference="results/exp1",
        # the joined grid: steering wind and region-2 rain for the skill by flow regime and
        # the lag diagnostics
        upstream=f"{WORK}/processed/concat.zarr",
        upstream_stats=f"{WORK}/processed/concat_stats.json",
        **_run_inputs("exp2"),
        **_baseline_inputs(),
    output:
        report(
            directory("results/exp2"),
            patterns=["{name}.png", "{name}.csv"],
            caption="../report/exp2.rst",
            category="exp2: region 2 + region 1, compared with exp1",
        ),
    params:
        settings=settings("evaluation", "splits", "frames", "regions"),
        runs=" ".join(f"results/runs/exp2/seed{s}" for s in SEEDS),
        baselines=_baseline_args,
    resources:
        mem_mb=2000,
    log:
        "logs/evaluate/exp2.log",
    benchmark:
        "logs/benchmarks/compare_exp2/exp2.tsv"
    shell:
        "{PY} -m evaluation.evaluate --config {CFG} --exp exp2 --data {input.data}"
        " --runs {params.runs} --reference {input.reference} --baselines {params.baselines}"
        " --upstream-data {input.upstream} --upstream-stats {input.upstream_stats}"
        " --out {output} --no-progress > {log} 2>&1"
