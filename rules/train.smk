# Train the ConvLSTM U-Net per experiment (config key experiments) and seed, on the
# experiment's grid and input selection, then predict the test period.


def train_launcher(wildcards, threads, resources):
    """``python -m training.train``, or with ``resources.ddp_processes`` > 1 data-parallel
    training on one node through ``torchrun`` (README "Several GPUs"), each process with
    its share of the job's threads."""
    n = int(resources.ddp_processes)
    if n <= 1:
        return f"OMP_NUM_THREADS={threads} {PY} -m training.train --threads {threads}"
    per = max(1, threads // n)
    return (f"OMP_NUM_THREADS={per} {PY} -m torch.distributed.run --standalone --nnodes 1 "
            f"--nproc-per-node {n} -m training.train --threads {per}")


# --resume: a killed training job (whose declared outputs Snakemake removes) continues from
# the undeclared checkpoint_last.pt of the same run on the rerun; a changed config or data
# makes train start fresh (see training/train.py).
rule train_model:
    input:
        lambda wc: f"{WORK}/processed/{EXPERIMENT_GRID[wc.exp]}.zarr",
    output:
        checkpoint=f"results/runs/{{exp}}/seed{{seed}}/checkpoint.pt",
        log=f"results/runs/{{exp}}/seed{{seed}}/train_log.csv",
        curve=f"results/runs/{{exp}}/seed{{seed}}/loss_curve.png",
    params:
        settings=settings("model", "train", "frames", "splits"),
        # the experiment's own entry: changing another experiment re-runs nothing here
        experiment=lambda wc: json.dumps(EXPERIMENTS[wc.exp].as_dict(), sort_keys=True),
        out=lambda wc: f"results/runs/{wc.exp}/seed{wc.seed}",
        launcher=train_launcher,
    threads: 2
    # ddp_processes: data-parallel processes of one training job (one per GPU; 1 = a plain
    # process). Set it with the GPUs, e.g. the SLURM profile's train_model entry or
    # --set-resources train_model:ddp_processes=4; train.batch_size stays the global batch.
    resources:
        mem_mb=3000,
        runtime=120,
        ddp_processes=1,
    log:
        "logs/train/{exp}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/train_model/{exp}_seed{seed}.tsv"
    shell:
        "{params.launcher} --config {CFG} --data {input}"
        " --exp {wildcards.exp} --seed {wildcards.seed} --out {params.out} --resume"
        " --no-progress > {log} 2>&1"


rule predict_test:
    input:
        checkpoint=rules.train_model.output.checkpoint,
        data=lambda wc: f"{WORK}/processed/{EXPERIMENT_GRID[wc.exp]}.zarr",
    output:
        directory(f"results/runs/{{exp}}/seed{{seed}}/predictions.zarr"),
    threads: 2
    resources:
        mem_mb=2000,
    log:
        "logs/predict/{exp}_seed{seed}.log",
    benchmark:
        "logs/benchmarks/predict_test/{exp}_seed{seed}.tsv"
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m training.predict --checkpoint {input.checkpoint}"
        " --data {input.data} --split test --out {output} --threads {threads} --no-progress > {log} 2>&1"
