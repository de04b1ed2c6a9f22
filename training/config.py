"""Typed views of the ``frames``, ``model``, ``train`` and ``tune`` config sections.

The schema (``schemas/config.schema.yaml``) validates the YAML and fills defaults; these
dataclasses are what the Python code passes around. Their defaults and enumerations are
read from the schema itself (never written twice), so a model can be built in a test or a
notebook without a config file and still agrees with the workflow.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields

from pipeline.common.config import check_model_settings, load_schema
from pipeline.common.errors import ConfigError

_SCHEMA = load_schema()["properties"]


def _prop(section: str, key: str) -> dict:
    return _SCHEMA[section]["properties"][key]


def _default(section: str, key: str):
    """The schema's default of ``section.key`` (lists become tuples: frozen dataclasses)."""
    d = copy.deepcopy(_prop(section, key)["default"])
    return tuple(d) if isinstance(d, list) else d


def _enum(section: str, key: str) -> tuple[str, ...]:
    return tuple(_prop(section, key)["enum"])


def _field(section: str, key: str):
    return field(default=_default(section, key))


ATTENTIONS = _enum("model", "attention")
ATTENTION_MODES = _enum("model", "attention_mode")
NORMS = _enum("model", "norm")
HEADS = _enum("model", "head")
LOSSES = _enum("train", "loss")
TARGET_TRANSFORMS = _enum("train", "target_transform")
AMPS = _enum("train", "amp")
DEVICES = _enum("train", "device")
DISTRIBUTED_BACKENDS = _enum("train", "distributed_backend")
SCHEDULES = _enum("train", "schedule")
TUNE_OBJECTIVES = _enum("tune", "objective")
TUNE_PRUNERS = _enum("tune", "pruner")
TUNE_EXPERIMENTS = _enum("tune", "experiment")


@dataclass(frozen=True)
class FramesConfig:
    input_steps: int = _field("frames", "input_steps")  # past frames per sample
    step_hours: int = _field("frames", "step_hours")  # hours between frames (00 and 12 UTC)
    lead_steps: int = _field("frames", "lead_steps")  # target = frame lead_steps after the last input


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...] = _field("model", "hidden")  # hidden channels per U-Net level; last = bottleneck
    kernel_size: int = _field("model", "kernel_size")  # ConvLSTM gate-convolution kernel (odd, 'same' padding)
    attention: str = _field("model", "attention")  # bottleneck attention
    attention_mode: str = _field("model", "attention_mode")  # attention on every step or the final state
    norm: str = _field("model", "norm")  # normalisation of the gate pre-activations
    groups: int = _field("model", "groups")  # GroupNorm groups; must divide 4 * hidden of every level
    head: str = _field("model", "head")  # regression (one non-negative value) | bins (distribution)
    bin_edges_mm: tuple[float, ...] = _field("model", "bin_edges_mm")  # inner edges of the rain bins, mm
    quantile: float | str = _field("model", "quantile")  # bins head: forecast = this quantile, or auto (fit on val)
    quantile_fit_mm: tuple[float, ...] = _field("model", "quantile_fit_mm")  # thresholds auto fits the bias at
    dropout: float = _field("model", "dropout")  # spatial dropout before the head (0 = off)
    region_channel: bool = _field("model", "region_channel")  # static input channel: 1 on region 1, 0 on region 2

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "bin_edges_mm", tuple(float(e) for e in self.bin_edges_mm))
        object.__setattr__(self, "quantile_fit_mm", tuple(float(t) for t in self.quantile_fit_mm))
        if self.quantile != "auto" and not (isinstance(self.quantile, (int, float)) and 0 < self.quantile < 1):
            raise ConfigError(f"config key 'model.quantile': need a number in (0, 1) or auto, got {self.quantile!r}")
        _check("model.attention", self.attention, ATTENTIONS)
        _check("model.attention_mode", self.attention_mode, ATTENTION_MODES)
        _check("model.norm", self.norm, NORMS)
        _check("model.head", self.head, HEADS)
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"config key 'model.hidden': need >= 1 positive widths, got {list(self.hidden)}")
        check_model_settings(self.hidden, self.kernel_size, self.norm, self.groups, self.bin_edges_mm)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _field("train", "epochs")  # maximum epochs (early stopping may end sooner)
    batch_size: int = _field("train", "batch_size")  # samples per forward/backward pass
    grad_accumulation: int = _field("train", "grad_accumulation")  # batches summed per optimiser step
    lr: float = _field("train", "lr")  # AdamW peak learning rate
    lr_reference_batch: int | None = _field("train", "lr_reference_batch")  # linear lr scaling; None = off
    weight_decay: float = _field("train", "weight_decay")  # AdamW decoupled weight decay
    schedule: str = _field("train", "schedule")  # cosine decay to 0 after warm-up, or constant
    warmup_fraction: float = _field("train", "warmup_fraction")  # linear warm-up, fraction of all steps
    grad_clip: float = _field("train", "grad_clip")  # max global gradient L2 norm; 0 disables
    region2_group_dropout: float = _field("train", "region2_group_dropout")  # P(hold a region-2 group at 0), training
    loss: str = _field("train", "loss")  # see training/losses.py
    loss_alpha: float = _field("train", "loss_alpha")  # slope alpha of the weighted_mse weight
    target_transform: str = _field("train", "target_transform")  # loss scale: log1p or mm
    amp: str = _field("train", "amp")  # auto | off | bf16
    early_stopping_patience: int = _field("train", "early_stopping_patience")  # epochs without val gain
    device: str = _field("train", "device")  # auto picks cuda, then mps, then cpu
    distributed_backend: str = _field("train", "distributed_backend")  # torchrun: auto = nccl on cuda, else gloo
    num_workers: int = _field("train", "num_workers")  # DataLoader worker processes (0: main process)
    deterministic: bool = _field("train", "deterministic")  # deterministic kernels, exact resume on CPU
    seeds: tuple[int, ...] = _field("train", "seeds")  # training seeds per experiment
    preload_max_gb: float = _field("train", "preload_max_gb")  # load the arrays into RAM below this, GB
    time_budget_minutes: float = _field("train", "time_budget_minutes")  # wall-clock stop; 0 = off

    def __post_init__(self):
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        _check("train.loss", self.loss, LOSSES)
        _check("train.target_transform", self.target_transform, TARGET_TRANSFORMS)
        _check("train.amp", self.amp, AMPS)
        _check("train.device", self.device, DEVICES)
        _check("train.distributed_backend", self.distributed_backend, DISTRIBUTED_BACKENDS)
        _check("train.schedule", self.schedule, SCHEDULES)


@dataclass(frozen=True)
class TuneConfig:
    n_trials: int = _field("tune", "n_trials")  # trials in all, split between the workers
    workers: int = _field("tune", "workers")  # parallel worker jobs sharing one storage
    experiment: str = _field("tune", "experiment")  # exp1 | exp2
    epochs: int = _field("tune", "epochs")  # epochs per trial (replaces train.epochs there)
    seed: int = _field("tune", "seed")  # TPE seed; worker k uses seed + k
    objective: str = _field("tune", "objective")  # crps | val_loss, on the validation split
    pruner: str = _field("tune", "pruner")  # median | hyperband
    pruner_startup_trials: int = _field("tune", "pruner_startup_trials")  # median: completed trials first
    storage: str | None = _field("tune", "storage")  # None: the default journal file; journal:PATH; a URL
    search_space: dict = field(default_factory=lambda: copy.deepcopy(_prop("tune", "search_space")["default"]))

    def __post_init__(self):
        _check("tune.objective", self.objective, TUNE_OBJECTIVES)
        _check("tune.pruner", self.pruner, TUNE_PRUNERS)
        _check("tune.experiment", self.experiment, TUNE_EXPERIMENTS)
        for key in ("n_trials", "workers", "epochs"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ConfigError(f"config key 'tune.{key}': need an integer >= 1, got {getattr(self, key)!r}")


def _check(key: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"config key '{key}': {value!r} is not one of {list(allowed)}")


def _from_section(cls, section: dict | None, name: str):
    section = dict(section or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"config key '{name}.{unknown[0]}': unknown key (known: {sorted(known)})")
    return cls(**section)


def frames_config(config: dict) -> FramesConfig:
    return _from_section(FramesConfig, config.get("frames"), "frames")


def model_config(config: dict) -> ModelConfig:
    return _from_section(ModelConfig, config.get("model"), "model")


def train_config(config: dict) -> TrainConfig:
    return _from_section(TrainConfig, config.get("train"), "train")


def tune_config(config: dict) -> TuneConfig:
    return _from_section(TuneConfig, config.get("tune"), "tune")


def as_dict(dc) -> dict:
    """Plain dict (lists, not tuples) for checkpoints and JSON."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(dc).items()}


__all__ = [
    "FramesConfig",
    "ModelConfig",
    "TrainConfig",
    "TuneConfig",
    "frames_config",
    "model_config",
    "train_config",
    "tune_config",
    "as_dict",
]
