# Objective analysis of each month's soundings and 12 h gauge rain onto each grid. The
# region1 grid uses region-1 observations only, so exp1 never sees upstream observations;
# the concat grid uses region 1 and region 2.


rule grid_month:
    input:
        soundings=f"{WORK}/interim/soundings/{{month}}.nc",
        gauges=f"{WORK}/interim/gauges/{{month}}.nc",
    output:
        f"{WORK}/gridded/{{grid}}/{{month}}.nc",
    params:
        settings=settings("gridding", "grid", "regions", "levels_hpa", "variables"),
    threads: 2
    resources:
        mem_mb=1500,
    log:
        "logs/grid/{grid}_{month}.log",
    shell:
        "{PY} -m pipeline.grid --config {CFG} --soundings {input.soundings} --gauges {input.gauges}"
        " --month {wildcards.month} --grid {wildcards.grid} --out {output} --threads {threads} 2>&1 | tee {log}"
