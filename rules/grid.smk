# Objective analysis of each month's soundings and 12 h gauge rain onto the joined grid.


rule grid_month:
    input:
        soundings=f"{WORK}/interim/soundings/{{month}}.nc",
        gauges=f"{WORK}/interim/gauges/{{month}}.nc",
    output:
        f"{WORK}/gridded/{{month}}.nc",
    params:
        settings=settings("gridding", "grid", "regions", "levels_hpa", "variables"),
    threads: 2
    resources:
        mem_mb=1500,
    log:
        "logs/grid/{month}.log",
    shell:
        "{PY} -m pipeline.grid --config {CFG} --soundings {input.soundings} --gauges {input.gauges}"
        " --month {wildcards.month} --out {output} --threads {threads} 2>&1 | tee {log}"
