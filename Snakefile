# Upstream-rain workflow: raw soundings + gauges -> zarr tensors -> ConvLSTM U-Net -> verification.
# Main job: `snakemake --cores 8 results/exp2`; hyperparameter search: `snakemake --cores 2 results/tune`;
# attribution of exp2's skill to region-2 inputs: `snakemake --cores 2 results/attribution`.
# See README.md and docs/contracts.md.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


# Parse-time validation: unknown keys and wrong types fail here, naming the key.
validate(config, "schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/sources.smk"
# data.upper_air: gridded takes the upper air from pressure-level files (rules/upper_air.smk)
if config["data"].get("upper_air", "soundings") == "gridded":

    include: "rules/upper_air.smk"

else:

    include: "rules/ingest.smk"

include: "rules/leaveout.smk"
include: "rules/dataset.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/baselines.smk"
include: "rules/tune.smk"
include: "rules/attribution.smk"
include: "rules/radar.smk"


report: "report/workflow.rst"


rule all:
    input:
        "results/exp2",
