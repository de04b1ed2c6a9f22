# Physical baselines built from the processed data alone (no training).


rule advection_baseline:
    input:
        zarr=f"{WORK}/processed/concat.zarr",
        stats=f"{WORK}/processed/concat_stats.json",
    output:
        directory("results/baselines/advection/predictions.zarr"),
    params:
        settings=settings("evaluation", "splits", "frames"),
        level=config["evaluation"]["advection_level_hpa"],
    resources:
        mem_mb=1000,
    log:
        "logs/baselines/advection.log",
    benchmark:
        "logs/benchmarks/advection_baseline/advection.tsv"
    shell:
        "{PY} -m evaluation.advection --config {CFG} --data {input.zarr} --stats {input.stats}"
        " --level-hpa {params.level} --out {output} > {log} 2>&1"
