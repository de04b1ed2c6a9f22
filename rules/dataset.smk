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
    resources:
        mem_mb=2000,
    log:
        "logs/dataset/{grid}.log",
    benchmark:
        "logs/benchmarks/build_dataset/{grid}.tsv"
    shell:
        "{PY} -m pipeline.dataset --config {CFG} --grid {wildcards.grid} --out {output.zarr}"
        " --stats-out {output.stats} --threads {threads} --no-progress {input} > {log} 2>&1"
