# Attribution of exp2's skill to region-2 inputs (README "Attribution"): permutation
# importance by variable, level band and input lag, and occlusion of region 2, for the first
# training seed's exp2 model on the test split. A separate target, not part of the main job:
# `snakemake --cores 2 results/attribution` (about 35 test-split predictions). With
# attribution.relearn, exp2 is also retrained without each listed region-2 variable group
# (experiments exp2_without_GROUP, compared with exp2): one training per group and seed.

RELEARN = config["attribution"]["relearn"]


rule attribution:
    input:
        checkpoint=f"results/runs/exp2/seed{SEEDS[0]}/checkpoint.pt",
        data=f"{WORK}/processed/concat.zarr",
        relearn=[f"results/{RELEARN_PREFIX}{g}" for g in RELEARN],
    output:
        directory("results/attribution"),
    params:
        settings=settings("attribution", "evaluation", "seed"),
        repeats=config["attribution"]["repeats"],
        partners=config["attribution"]["partners"],
        neighbours=config["attribution"]["neighbours"],
        relearn=" ".join(f"{g}=results/{RELEARN_PREFIX}{g}/comparison.json" for g in RELEARN),
    threads: 2
    resources:
        mem_mb=2000,
    log:
        "logs/attribution/exp2.log",
    benchmark:
        "logs/benchmarks/attribution/exp2.tsv"
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m evaluation.attribution --checkpoint {input.checkpoint} --data {input.data}"
        " --repeats {params.repeats} --partners {params.partners} --neighbours {params.neighbours} --relearn {params.relearn} --out {output} --threads {threads} --no-progress > {log} 2>&1"
