# The gridded upper-air source (data.upper_air: gridded), included by the Snakefile instead
# of rules/ingest.smk: a month's gauges are ingested as usual, the upper air is regridded
# from the pressure-level files in raw_dir/<data.gridded.dir> (python -m
# pipeline.gridding.upper_air, every file given, times matched to the month's frames), and
# the month's fragments have the soundings path's layout, so rules/dataset.smk reads them
# unchanged. The interim soundings file it leaves has no profile (network map, leave-out).

GRIDDED_DIR = f"{RAW}/{config['data']['gridded']['dir']}"
GRIDDED_FILES = sorted(str(p) for p in Path(GRIDDED_DIR).glob("*") if p.suffix.lower() in
                       (".nc", ".nc4", ".grib", ".grb", ".grib2", ".grb2"))


def _previous_gauge_file(wildcards):
    """The previous month's gauge file, needed for the 12 h window ending 00 UTC on day 1."""
    from pipeline.common.config import previous_month

    prev = previous_month(wildcards.month)
    return [f"{RAW}/gauges/{prev}.csv"] if prev in MONTHS else []


def _step(*words):
    return shlex.quote(" ".join(str(w) for w in words))


def _prepare_gridded_steps(wildcards, input, output, threads):
    m = wildcards.month
    grid_out = output.region1.replace(f"/region1/{m}.nc", f"/{{grid}}/{m}.nc")
    return " ".join([
        _step("pipeline.ingest gauges --config", CFG, "--stations", input.stations, "--month", m,
              "--out", output.gauges, input.gauges, *input.previous),
        _step("pipeline.gridding.upper_air --config", CFG, "--gauges", output.gauges, "--month", m,
              "--grid region1,concat --out", grid_out, "--soundings-out", output.soundings,
              "--files", *input.gridded),
    ])


rule prepare_month:
    input:
        gridded=GRIDDED_FILES,
        gauges=f"{RAW}/gauges/{{month}}.csv",
        previous=_previous_gauge_file,
        stations=f"{RAW}/gauges/stations.csv",
    output:
        soundings=f"{WORK}/interim/soundings/{{month}}.nc",
        gauges=f"{WORK}/interim/gauges/{{month}}.nc",
        gauges_qc=f"{WORK}/interim/gauges/{{month}}.qc.json",
        region1=f"{WORK}/gridded/region1/{{month}}.nc",
        concat=f"{WORK}/gridded/concat/{{month}}.nc",
    params:
        settings=settings("qc", "levels_hpa", "variables", "data", "frames", "gridding", "grid", "regions"),
        steps=_prepare_gridded_steps,
    threads: 2
    resources:
        mem_mb=1500,
    log:
        "logs/prepare/{month}.log",
    benchmark:
        "logs/benchmarks/prepare_month/{month}.tsv"
    shell:
        "{PY} -m pipeline.steps {params.steps} > {log} 2>&1"
