# The embedded default: a synthetic nature run (OSSE) written in the real raw formats.
# Only active with data.source: synthetic. One job per month, so extending the period
# generates only the new months (earlier month files stay byte-identical).

if config["data"]["source"] == "synthetic":

    rule generate_network:
        output:
            station_list=f"{RAW}/soundings/igra2-station-list.txt",
            gauge_stations=f"{RAW}/gauges/stations.csv",
        params:
            settings=settings("synthetic", "regions", "grid"),
        log:
            "logs/sources/network.log",
        benchmark:
            "logs/benchmarks/generate_network/network.tsv"
        shell:
            "{PY} -m pipeline.nature_run --config {CFG} --out {RAW} --network-only --no-progress > {log} 2>&1"

    rule generate_month:
        input:
            rules.generate_network.output,
        output:
            soundings=directory(f"{RAW}/soundings/{{month}}"),
            gauges=f"{RAW}/gauges/{{month}}.csv",
            truth=f"{RAW}/truth/{{month}}.nc",
        params:
            # period.start fixes the spin-up; period.end is deliberately not here.
            settings=settings("synthetic", "regions", "grid", "levels_hpa", "variables"),
            start=config["period"]["start"],
        log:
            "logs/sources/month_{month}.log",
        benchmark:
            "logs/benchmarks/generate_month/{month}.tsv"
        shell:
            "{PY} -m pipeline.nature_run --config {CFG} --out {RAW} --month {wildcards.month} --no-progress > {log} 2>&1"
