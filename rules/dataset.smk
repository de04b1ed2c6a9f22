# Monthly gridded fragments -> normalised zarr tensors for the region-1 and joined grids.


rule build_dataset:
    input:
        expand(f"{WORK}/gridded/{{{{grid}}}}/{{month}}.nc", month=MONTHS),
    output:
        zarr=directory(f"{WORK}/processed/{{grid}}.zarr"),
        stats=f"{WORK}/processed/{{grid}}_stats.json",
    params:
        settings=settings("gridding", "grid", "regions", "splits", "frames", "levels_hpa", "variables"),
    threads: 2
    # measured peak 0.41 GiB (joined grid, 36 months; writes are blockwise): both stores fit
    # the local profile's budget side by side, which shortens the run's tail
    resources:
        mem_mb=1000,
    log:
        "logs/dataset/{grid}.log",
    benchmark:
        "logs/benchmarks/build_dataset/{grid}.tsv"
    shell:
        "{PY} -m pipeline.dataset --config {CFG} --grid {wildcards.grid} --out {output.zarr}"
        " --stats-out {output.stats} --threads {threads} --no-progress {input} > {log} 2>&1"
