# Leave-out validation of the gridding ("how good is the truth?"): gauges and sounding
# stations withheld at random, the analysis re-run from the others and scored at the
# withheld sites (python -m pipeline.gridding.leaveout). Reads the months' ingested inputs
# (the prepare_month outputs); the table goes into the main job's report (compare_experiment).
from pipeline.gridding.leaveout import leaveout_months  # noqa: E402

LEAVEOUT_MONTHS = leaveout_months(config, MONTHS)


def _leaveout_args(wildcards, input):
    return " ".join(f"--month {m} --soundings {s} --gauges {g}"
                    for m, s, g in zip(LEAVEOUT_MONTHS, input.soundings, input.gauges))


rule gridding_leaveout:
    input:
        soundings=[f"{WORK}/interim/soundings/{m}.nc" for m in LEAVEOUT_MONTHS],
        gauges=[f"{WORK}/interim/gauges/{m}.nc" for m in LEAVEOUT_MONTHS],
    output:
        json=f"{WORK}/gridding_leaveout/leaveout.json",
        csv=f"{WORK}/gridding_leaveout/leaveout.csv",
    params:
        settings=settings("gridding", "grid", "regions", "levels_hpa", "variables", "frames", "leaveout", "seed"),
        args=_leaveout_args,
    resources:
        mem_mb=1000,
    log:
        "logs/gridding_leaveout.log",
    benchmark:
        "logs/benchmarks/gridding_leaveout.tsv"
    shell:
        "{PY} -m pipeline.gridding.leaveout --config {CFG} {params.args} --out {output.json} > {log} 2>&1"
