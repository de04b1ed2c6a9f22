# Hyperparameter search (README "Tuning"; python -m training.tune): tune.workers jobs run
# trials in parallel against one Optuna storage (tune.storage; by default the journal file
# results/tune_study/study.journal, safe for parallel appends), then one job summarises
# the study into results/tune/ (best_params.yaml, trials.csv, study.json, figures).
# Trials score the validation split only; the test split is never read.

from training.tune import search_space  # noqa: E402

TUNE = config["tune"]
TUNE_DATA = f"{WORK}/processed/{EXPERIMENT_GRID[TUNE['experiment']]}.zarr"
TUNE_SETTINGS = settings("tune", "model", "train", "frames", "splits")


def _tune_data(wildcards):
    """The tuned experiment's store. Checks first what the schema cannot (lr low < high,
    choices that fit the model, e.g. widths and model.groups): a bad search space stops the
    planning of results/tune, naming the key, and never the main job's."""
    try:
        search_space(config)
    except ConfigError as err:
        raise WorkflowError(f"Invalid configuration: {err}")
    return TUNE_DATA


wildcard_constraints:
    worker=r"\d+",


# One trial at a time per worker, one thread each: for these small models, trials side by
# side use the cores better than threads within a trial, so tune.workers = the cores is a
# good choice (or raise the threads: --set-threads tune_worker=N). The output is the
# worker's record; its trials live in the shared storage, so a rerun of a killed worker
# job runs only the trials it had not finished.
rule tune_worker:
    input:
        _tune_data,
    output:
        "results/tune_study/worker{worker}.json",
    params:
        settings=TUNE_SETTINGS,
    threads: 1
    resources:
        # one training run at a time: two workers fit the local profile's budget
        mem_mb=1500 if TUNE["experiment"] == "exp1" else 3000,
        runtime=240,
    log:
        "logs/tune/worker{worker}.log",
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m training.tune --config {CFG} --data {input}"
        " --worker {wildcards.worker} --out {output} --threads {threads} --no-progress > {log} 2>&1"


rule tune:
    input:
        data=TUNE_DATA,
        workers=expand("results/tune_study/worker{worker}.json", worker=range(TUNE["workers"])),
    output:
        directory("results/tune"),
    params:
        settings=TUNE_SETTINGS,
    resources:
        mem_mb=1000,
    log:
        "logs/tune/summary.log",
    shell:
        "{PY} -m training.tune --config {CFG} --data {input.data} --summarise --out {output}"
        " --no-progress > {log} 2>&1"
