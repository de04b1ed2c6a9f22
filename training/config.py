"""Typed views of the ``frames``, ``model`` and ``train`` config sections.

The schema (``schemas/config.schema.yaml``) validates the YAML and fills defaults; these
dataclasses are what the Python code passes around. Their defaults repeat the schema's
so a model can be built in a test or a notebook without a config file.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from pipeline.common.errors import ConfigError

ATTENTIONS = ("none", "self", "se", "cbam", "eca")
ATTENTION_MODES = ("every_step", "final")
NORMS = ("none", "batch", "group", "layer")
LOSSES = ("mse", "weighted_mse", "logcosh")
TARGET_TRANSFORMS = ("log1p", "mm")
AMPS = ("auto", "off", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")
SCHEDULES = ("cosine", "none")


@dataclass(frozen=True)
class FramesConfig:
    input_steps: int = 6  # past frames per sample (6 x 12 h = 3 days)
    step_hours: int = 12  # hours between frames (00 and 12 UTC)
    lead_steps: int = 1  # target = frame `lead_steps` after the last input frame


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...] = (32, 64)  # hidden channels per U-Net level; last = bottleneck
    kernel_size: int = 3  # ConvLSTM gate-convolution kernel (odd, 'same' padding)
    attention: str = "self"  # bottleneck attention: none | self | se | cbam | eca
    attention_mode: str = "final"  # attention on every step's state or only the final one
    norm: str = "group"  # normalisation of the gate pre-activations: none|batch|group|layer
    groups: int = 8  # GroupNorm groups; must divide 4 * hidden of every level

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        _check("model.attention", self.attention, ATTENTIONS)
        _check("model.attention_mode", self.attention_mode, ATTENTION_MODES)
        _check("model.norm", self.norm, NORMS)
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"config key 'model.hidden': need >= 1 positive widths, got {list(self.hidden)}")
        if self.kernel_size % 2 != 1:
            raise ConfigError(f"config key 'model.kernel_size': must be odd, got {self.kernel_size}")
        if self.norm == "group":
            bad = [h for h in self.hidden if (4 * h) % self.groups]
            if bad:
                raise ConfigError(
                    f"config key 'model.groups': {self.groups} does not divide 4 * hidden for hidden {bad}"
                )


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3  # maximum epochs (early stopping or the time budget may end sooner)
    batch_size: int = 16  # samples per forward/backward pass
    grad_accumulation: int = 1  # batches summed per optimiser step
    lr: float = 0.002  # AdamW peak learning rate
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    schedule: str = "cosine"  # per-optimiser-step cosine decay to 0, or constant ('none')
    grad_clip: float = 1.0  # max global gradient L2 norm; 0 disables clipping
    loss: str = "weighted_mse"  # mse | weighted_mse ((1 + alpha*y)(pred - y)^2) | logcosh
    loss_alpha: float = 1.0  # slope alpha of the weighted_mse weight, per target unit
    target_transform: str = "log1p"  # loss scale: log1p (log(1 + mm)) or mm
    amp: str = "auto"  # auto: fp16+GradScaler on CUDA, off elsewhere; off; bf16 autocast
    early_stopping_patience: int = 4  # epochs without val improvement before stopping
    device: str = "auto"  # auto picks cuda, then mps, then cpu
    num_workers: int = 0  # DataLoader worker processes (0: main process)
    deterministic: bool = True  # deterministic kernels, exact resume on CPU
    seeds: tuple[int, ...] = (0,)  # training seeds per experiment
    preload_max_gb: float = 4.0  # load the needed arrays into RAM when below this size, GB
    time_budget_minutes: float = 0.0  # stop before an epoch that would end past this; 0 = off

    def __post_init__(self):
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        _check("train.loss", self.loss, LOSSES)
        _check("train.target_transform", self.target_transform, TARGET_TRANSFORMS)
        _check("train.amp", self.amp, AMPS)
        _check("train.device", self.device, DEVICES)
        _check("train.schedule", self.schedule, SCHEDULES)


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


def as_dict(dc) -> dict:
    """Plain dict (lists, not tuples) for checkpoints and JSON."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(dc).items()}


__all__ = [
    "FramesConfig",
    "ModelConfig",
    "TrainConfig",
    "frames_config",
    "model_config",
    "train_config",
    "as_dict",
]
