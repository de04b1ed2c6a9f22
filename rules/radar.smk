# The dual-polarisation radar track (README "Radar"; issue 17): a separate target,
# `snakemake --cores 2 results/radar`, not part of the main job. Radar nature run ->
# CAPPI store -> training per experiment and seed -> nowcasts of the test split ->
# verification, paired block-bootstrap comparison (over samples and training seeds) of each
# experiment with its reference, report (results/radar/report.md, metrics.json,
# skill_by_lead.png).
from radar.dataset import experiments as _radar_experiments  # noqa: E402
from radar.train import train_settings as _radar_train_settings  # noqa: E402

RADAR_EXPERIMENTS = sorted(_radar_experiments(config))
RADAR_SEEDS = list(_radar_train_settings(config)["seeds"])
RADAR_RUNS = "results/radar_runs"


rule radar_nature_run:
    output:
        raw=directory("data/radar/raw"),
        truth=directory("data/radar/truth"),
    params:
        settings=settings("radar", "seed"),
    log:
        "logs/radar/nature_run.log",
    benchmark:
        "logs/benchmarks/radar/nature_run.tsv"
    shell:
        "{PY} -m radar.nature_run --config {CFG} --out {output.raw} --truth {output.truth} --no-progress > {log} 2>&1"


rule radar_grid:
    input:
        raw="data/radar/raw",
    output:
        directory("data/radar/processed/cappi.zarr"),
    params:
        settings=settings("radar", "seed"),
    log:
        "logs/radar/grid.log",
    benchmark:
        "logs/benchmarks/radar/grid.tsv"
    shell:
        "{PY} -m radar.grid --config {CFG} --raw {input.raw} --out {output} --no-progress > {log} 2>&1"


rule radar_train:
    input:
        cappi="data/radar/processed/cappi.zarr",
    output:
        checkpoint=f"{RADAR_RUNS}/{{rexp}}/seed{{rseed}}/model.pt",
        log_csv=f"{RADAR_RUNS}/{{rexp}}/seed{{rseed}}/log.csv",
        curve=f"{RADAR_RUNS}/{{rexp}}/seed{{rseed}}/loss_curve.png",
    params:
        settings=settings("radar", "seed"),
        out=f"{RADAR_RUNS}/{{rexp}}/seed{{rseed}}",
    threads: 2
    resources:
        mem_mb=2000,
    log:
        "logs/radar/train_{rexp}_seed{rseed}.log",
    benchmark:
        "logs/benchmarks/radar/train_{rexp}_seed{rseed}.tsv"
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m radar.train --config {CFG} --cappi {input.cappi} --experiment {wildcards.rexp}"
        " --seed {wildcards.rseed} --out {params.out} --no-progress > {log} 2>&1"


rule radar_predict:
    input:
        cappi="data/radar/processed/cappi.zarr",
        checkpoint=f"{RADAR_RUNS}/{{rexp}}/seed{{rseed}}/model.pt",
    output:
        f"{RADAR_RUNS}/nowcasts/{{rexp}}_seed{{rseed}}.nc",
    threads: 2
    log:
        "logs/radar/predict_{rexp}_seed{rseed}.log",
    benchmark:
        "logs/benchmarks/radar/predict_{rexp}_seed{rseed}.tsv"
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m radar.predict --config {CFG} --cappi {input.cappi}"
        " --checkpoint {input.checkpoint} --out {output} > {log} 2>&1"


rule radar_report:
    input:
        nowcasts=expand(f"{RADAR_RUNS}/nowcasts/{{rexp}}_seed{{rseed}}.nc", rexp=RADAR_EXPERIMENTS, rseed=RADAR_SEEDS),
        curves=expand(f"{RADAR_RUNS}/{{rexp}}/seed{{rseed}}/loss_curve.png", rexp=RADAR_EXPERIMENTS, rseed=RADAR_SEEDS),
    output:
        directory("results/radar"),
    params:
        settings=settings("radar", "seed"),
        # every seed's nowcast: EXP=FILE once per seed (the report averages over seeds and
        # resamples them in the bootstrap)
        pairs=" ".join(f"{e}={RADAR_RUNS}/nowcasts/{e}_seed{s}.nc" for e in RADAR_EXPERIMENTS for s in RADAR_SEEDS),
    threads: 2
    log:
        "logs/radar/report.log",
    benchmark:
        "logs/benchmarks/radar/report.tsv"
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m radar.report --config {CFG} --nowcasts {params.pairs} --out {output} > {log} 2>&1"


wildcard_constraints:
    rexp="|".join(RADAR_EXPERIMENTS),
    rseed=r"\d+",
