# Objective analysis of each month's soundings and 12 h gauge rain onto both grids (one
# job per month). The region1 grid uses region-1 observations only, so exp1 never sees
# upstream observations; the concat grid uses region 1 and region 2.


rule grid_month:
    input:
        soundings=f"{WORK}/interim/soundings/{{month}}.nc",
        gauges=f"{WORK}/interim/gauges/{{month}}.nc",
    output:
        region1=f"{WORK}/gridded/region1/{{month}}.nc",
        concat=f"{WORK}/gridded/concat/{{month}}.nc",
    params:
        settings=settings("gridding", "grid", "regions", "levels_hpa", "variables"),
        out=lambda wc: f"{WORK}/gridded/{{grid}}/{wc.month}.nc",
    threads: 2
    resources:
        mem_mb=1500,
    log:
        "logs/grid/{month}.log",
    benchmark:
        "logs/benchmarks/grid_month/{month}.tsv"
    shell:
        "{PY} -m pipeline.gridding --config {CFG} --soundings {input.soundings} --gauges {input.gauges}"
        " --month {wildcards.month} --grid region1,concat --out {params.out} --threads {threads} > {log} 2>&1"
