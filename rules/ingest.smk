# A month's data preparation, one job per month: raw soundings and gauge records -> QC'd
# interim files -> objective analysis onto both grids. The three steps run in one Python
# process (python -m pipeline.steps), each exactly as its own command line would run it and
# writing its own outputs, so a month pays the libraries' start-up once instead of three
# times (benchmarks/bench_data_stages.py); adding a month still re-runs only that month.


def _previous_gauge_file(wildcards):
    """The previous month's gauge file, needed for the 12 h window ending 00 UTC on day 1."""
    from pipeline.common.config import previous_month

    prev = previous_month(wildcards.month)
    return [f"{RAW}/gauges/{prev}.csv"] if prev in MONTHS else []


def _station_list(wildcards):
    path = f"{RAW}/soundings/igra2-station-list.txt"
    if config["data"]["source"] == "synthetic" or Path(path).exists():
        return [path]
    return []


def _step(*words):
    """One step of pipeline.steps: a command line as one shell-quoted argument."""
    return shlex.quote(" ".join(str(w) for w in words))


def _prepare_steps(wildcards, input, output, threads):
    m = wildcards.month
    station_list = f"--station-list {input.station_list}" if input.station_list else ""
    grid_out = output.region1.replace(f"/region1/{m}.nc", f"/{{grid}}/{m}.nc")
    return " ".join([
        _step("pipeline.ingest soundings --config", CFG, "--format", SOUNDING_FORMAT, station_list, "--month", m,
              "--no-progress --out", output.soundings, input.soundings),
        _step("pipeline.ingest gauges --config", CFG, "--stations", input.stations, "--month", m,
              "--out", output.gauges, input.gauges, *input.previous),
        # The region1 grid uses region-1 observations only, so exp1 never sees upstream
        # observations; the concat grid uses region 1 and region 2.
        _step("pipeline.gridding --config", CFG, "--soundings", output.soundings, "--gauges", output.gauges,
              "--month", m, "--grid region1,concat --out", grid_out, "--threads", threads),
    ])


rule prepare_month:
    input:
        soundings=f"{RAW}/soundings/{{month}}",
        station_list=_station_list,
        gauges=f"{RAW}/gauges/{{month}}.csv",
        previous=_previous_gauge_file,
        stations=f"{RAW}/gauges/stations.csv",
    output:
        soundings=f"{WORK}/interim/soundings/{{month}}.nc",
        soundings_qc=f"{WORK}/interim/soundings/{{month}}.qc.json",
        gauges=f"{WORK}/interim/gauges/{{month}}.nc",
        gauges_qc=f"{WORK}/interim/gauges/{{month}}.qc.json",
        region1=f"{WORK}/gridded/region1/{{month}}.nc",
        concat=f"{WORK}/gridded/concat/{{month}}.nc",
    params:
        settings=settings("qc", "levels_hpa", "variables", "data", "frames", "gridding", "grid", "regions"),
        steps=_prepare_steps,
    threads: 2
    resources:
        mem_mb=1500,
    log:
        "logs/prepare/{month}.log",
    benchmark:
        "logs/benchmarks/prepare_month/{month}.tsv"
    shell:
        "{PY} -m pipeline.steps {params.steps} > {log} 2>&1"
