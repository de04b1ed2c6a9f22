# Raw soundings and gauge records -> QC'd monthly interim files (one job per month).


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


rule ingest_soundings:
    input:
        month=f"{RAW}/soundings/{{month}}",
        station_list=_station_list,
    output:
        data=f"{WORK}/interim/soundings/{{month}}.nc",
        qc=f"{WORK}/interim/soundings/{{month}}.qc.json",
    params:
        settings=settings("qc", "levels_hpa", "variables", "data"),
        station_list=lambda wc, input: f"--station-list {input.station_list}" if input.station_list else "",
    resources:
        mem_mb=1000,
    log:
        "logs/ingest/soundings_{month}.log",
    benchmark:
        "logs/benchmarks/ingest_soundings/{month}.tsv"
    shell:
        "{PY} -m pipeline.ingest soundings --config {CFG} --format {SOUNDING_FORMAT}"
        " {params.station_list} --month {wildcards.month} --no-progress --out {output.data}"
        " {input.month}/* > {log} 2>&1"


rule ingest_gauges:
    input:
        month=f"{RAW}/gauges/{{month}}.csv",
        previous=_previous_gauge_file,
        stations=f"{RAW}/gauges/stations.csv",
    output:
        data=f"{WORK}/interim/gauges/{{month}}.nc",
        qc=f"{WORK}/interim/gauges/{{month}}.qc.json",
    params:
        settings=settings("qc", "frames"),
    resources:
        mem_mb=1500,
    log:
        "logs/ingest/gauges_{month}.log",
    benchmark:
        "logs/benchmarks/ingest_gauges/{month}.tsv"
    shell:
        "{PY} -m pipeline.ingest gauges --config {CFG} --stations {input.stations}"
        " --month {wildcards.month} --out {output.data} {input.month} {input.previous} > {log} 2>&1"
