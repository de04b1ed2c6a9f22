# Physical baselines built from the processed data alone (no training).


rule advection_baseline:
    input:
        zarr=f"{WORK}/processed/concat.zarr",
        stats=f"{WORK}/processed/concat_stats.json",
    output:
        directory("results/baselines/advection/predictions.zarr"),
    params:
        settings=settings("evaluation", "splits", "frames"),
    resources:
        mem_mb=1000,
    log:
        "logs/baselines/advection.log",
    shell:
        "{PY} -m evaluation.advection --config {CFG} --data {input.zarr} --stats {input.stats}"
        " --out {output} > {log} 2>&1"
