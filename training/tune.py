"""Hyperparameter search: an Optuna study over the config's ``tune.search_space``, scored on
the validation split (never the test split).

    python -m training.tune --config config.yaml --data data/processed/region1.zarr --out results/tune
    python -m training.tune --config C --data D --worker K --out results/tune_study/workerK.json
    python -m training.tune --config C --data D --summarise --out results/tune

Without ``--worker`` or ``--summarise`` the command runs every worker's trials in turn in
this process, then summarises the study into ``--out``. The workflow (``rules/tune.smk``)
runs ``tune.workers`` jobs with ``--worker k`` in parallel, each writing a record of its
trials to ``--out``, then one ``--summarise`` job writing ``results/tune/``
(:mod:`training.tune_summary`: ``best_params.yaml``, ``trials.csv``, ``study.json`` and two
figures).

Trials: a trial is one run of :func:`training.train.train` on ``--data`` with the sampled
settings, ``tune.epochs`` epochs and the first of ``train.seeds``, in a temporary folder
removed afterwards (nothing of a trial stays in ``results/``). Its ``on_epoch`` hook
(:class:`EpochReporter`) scores every epoch on the validation split (``tune.objective``),
reports the score to Optuna and asks the pruner (never at the trial's last epoch); a pruned
trial stops after that epoch and is marked pruned. A trial whose loss diverges is marked
failed (``diverged``) and the study goes on. A trial's value is the score of its epoch of
lowest validation loss (the checkpoint the main job keeps).

Parallel trials: the study lives in one storage (``tune.storage``; by default the journal
file ``results/tune_study/study.journal``, Optuna's JournalFileStorage, which several
processes append to safely). ``tune.n_trials`` slots are dealt out to the workers (worker k
owns slots k, k + workers, ...); a worker runs its slots that no finished trial holds yet, so
a killed worker job reruns only what is missing (its trial left running is marked failed and
``interrupted``) and a larger ``n_trials`` adds trials to the same study. The study's name
carries a hash of the settings and the data, so changed settings start a new study.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.common import cli
from pipeline.common.atomic import atomic_path
from pipeline.common.config import config_hash, deep_update, load_config
from pipeline.common.errors import ConfigError, TrainingDivergedError
from training.config import model_config, train_config, tune_config

log = logging.getLogger("training.tune")

#: Storage of ``tune.storage: null`` (relative to the working directory, like ``results/``).
DEFAULT_JOURNAL = Path("results") / "tune_study" / "study.journal"

#: Search-space key -> the config key it sets (``loss`` also sets ``model.head``).
TARGETS = {"lr": ("train", "lr"), "hidden": ("model", "hidden"), "attention": ("model", "attention"),
           "norm": ("model", "norm"), "loss": ("train", "loss")}

#: tune settings that may change without starting a new study (see :func:`study_name`).
NOT_IN_STUDY_NAME = ("n_trials", "workers", "storage")


class TuneError(RuntimeError):
    """The study cannot be summarised (none of its trials completed, or it does not exist)."""


cli.register_error(TuneError)


# ------------------------------------------------------------------ search space
@dataclass(frozen=True)
class Param:
    """One tuned setting: categorical ``choices`` (labels as Optuna stores them) or a
    log-uniform float in [``low``, ``high``]."""
    name: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None

    def suggest(self, trial):
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        return trial.suggest_float(self.name, self.low, self.high, log=True)


def hidden_label(widths) -> str:
    """``[32, 64]`` -> ``"32,64"`` (Optuna's categorical choices are scalars)."""
    return ",".join(str(int(w)) for w in widths)


def head_of(loss: str) -> str:
    """The output head a loss trains: cross_entropy the bins head, any other the regression head."""
    return "bins" if loss == "cross_entropy" else "regression"


def overlay(values: dict) -> dict:
    """A trial's parameter values as a config overlay (config structure, tuned keys only)."""
    out: dict = {}
    for name, value in values.items():
        section, key = TARGETS[name]
        if name == "hidden":
            value = [int(w) for w in str(value).split(",")]
        out.setdefault(section, {})[key] = value
        if name == "loss":
            out.setdefault("model", {})["head"] = head_of(value)
    return out


def trial_config(config: dict, values: dict, epochs: int | None = None) -> dict:
    """``config`` with a trial's values (and ``train.epochs`` = ``epochs`` when given)."""
    cfg = deep_update(copy.deepcopy(config), overlay(values))
    if epochs is not None:
        cfg["train"] = {**cfg.get("train", {}), "epochs": int(epochs)}
    return cfg


def _param(name: str, spec) -> Param:
    key = f"tune.search_space.{name}"
    if name not in TARGETS:
        raise ConfigError(f"config key '{key}': {name!r} cannot be tuned (allowed: {sorted(TARGETS)})")
    try:
        if name == "lr":
            low, high = float(spec["low"]), float(spec["high"])
            if not 0 < low < high:
                raise ValueError("need 0 < low < high")
            return Param(name, low=low, high=high)
        if isinstance(spec, (str, dict)) or not len(spec):
            raise ValueError("need a non-empty list of choices")
        choices = tuple(hidden_label(v) if name == "hidden" else v for v in spec)
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"config key '{key}': {spec!r} is not valid ({err})") from None
    if len(set(choices)) != len(choices):
        raise ConfigError(f"config key '{key}': {spec!r} lists a choice twice")
    return Param(name, choices=choices)


def search_space(config: dict) -> list[Param]:
    """The tuned parameters of ``tune.search_space``, checked against the rest of ``config``.

    Raises :class:`ConfigError` naming the search-space key and the value: a malformed
    entry, a choice that fits no trial (e.g. widths that ``model.groups`` does not divide
    under the group norm), or choices that do not fit together, or ``tune.objective:
    val_loss`` with several losses (their values are on different scales)."""
    tc = tune_config(config)
    params = [_param(name, spec) for name, spec in tc.search_space.items()]
    if not params:
        raise ConfigError("config key 'tune.search_space': empty; name at least one setting to tune")
    losses = next((p.choices for p in params if p.name == "loss"), ())
    if tc.objective == "val_loss" and len(losses) > 1:
        raise ConfigError(f"config key 'tune.objective': 'val_loss' cannot compare trials trained with "
                          f"different losses {list(losses)} (tune.search_space.loss); use crps")
    _check_combinations(config, [p for p in params if p.choices])
    return params


def _views(config: dict, values: dict) -> None:
    cfg = trial_config(config, values)
    model_config(cfg)
    train_config(cfg)


def _check_combinations(config: dict, params: list[Param]) -> None:
    """Every combination of categorical choices must make a valid model and training config."""
    grid = [[(p.name, c) for c in p.choices] for p in params]
    total = math.prod(len(p.choices) for p in params)
    failed: dict = {}
    first = None
    for combo in itertools.product(*grid):
        try:
            _views(config, dict(combo))
        except ConfigError as err:
            first = first or (combo, err)
            for item in combo:
                failed[item] = failed.get(item, 0) + 1
    if first is None:
        return
    for p in params:
        for c in p.choices:
            if failed.get((p.name, c), 0) == total // len(p.choices):
                value = overlay({p.name: c})[TARGETS[p.name][0]][TARGETS[p.name][1]]
                raise ConfigError(f"config key 'tune.search_space.{p.name}': {value!r} fits no trial: {first[1]}")
    combo, err = first
    raise ConfigError(f"config key 'tune.search_space': the choices {dict(combo)} do not fit together: {err}")


# ---------------------------------------------------------------- objective
def validation_crps(trainer) -> float:
    """Mean CRPS (mm / 12 h) over the validation split's loss cells: of the bins head's
    distribution (exactly, :func:`evaluation.probabilistic.crps_binned`, the report's CRPS),
    or the absolute error of the regression head's forecast (its CRPS)."""
    import numpy as np
    import torch

    from evaluation.probabilistic import crps_binned
    from training import bins
    from training.data import make_loader
    from training.losses import to_mm

    model, dataset, base = trainer.model, trainer.sets["val"], trainer.base
    transform = base["train"]["target_transform"]
    lower, upper = bins.bounds(base["model"]["bin_edges_mm"])
    amp = trainer.amp_dtype
    total, cells = 0.0, 0
    model.eval()
    with torch.no_grad():
        for x, y, mask in make_loader(dataset, base["train"]["batch_size"], None, 0):
            with torch.autocast(trainer.device.type, dtype=amp or torch.float32, enabled=amp is not None):
                out = model(x.to(trainer.device))
            out = out.float()
            obs = to_mm(y.float(), transform)[:, 0].numpy()
            on = mask[:, 0].numpy() > 0
            if model.head_kind == "bins":
                crps = crps_binned(torch.softmax(out, dim=1).cpu().numpy(), lower, upper, obs, axis=1)
            else:
                crps = np.abs(to_mm(out, transform).clamp_min(0)[:, 0].cpu().numpy() - obs)
            total += float(crps[on].sum())
            cells += int(on.sum())
    return total / max(cells, 1)


class EpochReporter:
    """The ``on_epoch`` hook of :func:`training.train.train` for one trial: the epoch's
    validation score (``objective``: ``crps`` via ``score(trainer)``, or the validation
    loss) is reported to Optuna; when the pruner says so before the last of ``epochs``,
    :class:`optuna.TrialPruned` ends the run after this epoch (a trial that has trained all
    its epochs is complete: pruning it would save nothing)."""

    def __init__(self, trial, objective: str, epochs: int, score=validation_crps):
        self.trial, self.objective, self.epochs, self.score = trial, objective, int(epochs), score
        self.rows: list[dict] = []

    def __call__(self, epoch: int, row: dict, trainer) -> None:
        import optuna

        value = float(row["val_loss"]) if self.objective == "val_loss" else float(self.score(trainer))
        self.rows.append({"epoch": int(epoch), "val_loss": float(row["val_loss"]), "score": value})
        self.trial.report(value, int(epoch))
        log.info(f"trial {self.trial.number} epoch {epoch}: validation {self.objective} {value:.4f}")
        if epoch < self.epochs and self.trial.should_prune():
            log.info(f"trial {self.trial.number} pruned after epoch {epoch}")
            raise optuna.TrialPruned(f"epoch {epoch}: validation {self.objective} {value:.4f}")

    def value(self) -> float:
        """The score of the epoch of lowest validation loss (the first of equals, as train keeps)."""
        if not self.rows:
            raise TuneError(f"trial {self.trial.number}: no epoch was trained")
        return min(self.rows, key=lambda r: r["val_loss"])["score"]


def make_objective(config: dict, data_path, space: list[Param], worker: int, slot: int,
                   threads: int | None, progress: bool):
    """The Optuna objective of one trial slot (see the module docstring)."""
    from training.train import train

    tc = tune_config(config)
    seed = int(train_config(config).seeds[0])

    def objective(trial) -> float:
        trial.set_user_attr("worker", int(worker))
        trial.set_user_attr("slot", int(slot))
        values = {p.name: p.suggest(trial) for p in space}
        log.info(f"trial {trial.number} (worker {worker}, slot {slot}): {values}")
        reporter = EpochReporter(trial, tc.objective, tc.epochs)
        try:
            with tempfile.TemporaryDirectory(prefix=f"tune-trial{trial.number}-") as tmp:
                summary = train(trial_config(config, values, tc.epochs), data_path, tc.experiment, seed, tmp,
                                threads=threads, progress=progress, on_epoch=reporter)
        except TrainingDivergedError as err:  # an outcome of these settings: the trial fails, the study goes on
            trial.set_user_attr("diverged", cli.one_line(err))
            raise
        finally:
            trial.set_user_attr("epochs", len(reporter.rows))
            trial.set_user_attr("val_loss", [r["val_loss"] for r in reporter.rows])
        trial.set_user_attr("stopped", summary["stopped"])
        trial.set_user_attr("parameters", int(summary["parameters"]))
        return reporter.value()

    return objective


# ------------------------------------------------------------------- storage and study
def storage_spec(config: dict) -> str:
    """``tune.storage`` with null resolved to the default journal file."""
    spec = tune_config(config).storage
    return f"journal:{DEFAULT_JOURNAL}" if spec is None else str(spec)


def describe_storage(spec: str) -> str:
    """The storage for logs and study.json: a database URL without its password."""
    if spec.startswith("journal:"):
        return spec
    from sqlalchemy.engine import make_url

    return make_url(spec).render_as_string(hide_password=True)


def open_storage(spec: str):
    """An Optuna storage: ``journal:PATH`` (a JournalFileStorage, created with its folder) or
    a database URL (SQLite waits up to 60 s for another worker's lock)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if spec.startswith("journal:"):
        path = Path(spec[len("journal:"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if "://" not in spec:
        raise ConfigError(f"config key 'tune.storage': {spec!r} is neither journal:PATH nor a database URL")
    kwargs = {"connect_args": {"timeout": 60}} if spec.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(spec, engine_kwargs=kwargs)


def study_name(config: dict, data_path) -> str:
    """``tune-<experiment>-<hash>``: the hash covers the tune settings (but the number of
    trials, of workers and the storage), the model, train, frames and splits sections and
    the data (the processed store's config hash)."""
    import xarray as xr

    try:
        data_hash = str(xr.open_zarr(data_path, consolidated=None).attrs.get("config_hash", ""))
    except Exception as err:  # noqa: BLE001 - re-raised with the path
        raise TuneError(f"{data_path}: cannot open as zarr: {err}") from err
    tune = {k: v for k, v in config["tune"].items() if k not in NOT_IN_STUDY_NAME}
    key = {"tune": tune, "data": data_hash, **{s: config.get(s) for s in ("model", "train", "frames", "splits")}}
    return f"tune-{config['tune']['experiment']}-{config_hash(key)}"


def make_pruner(config: dict):
    import optuna

    tc = tune_config(config)
    if tc.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=tc.epochs, reduction_factor=3)
    return optuna.pruners.MedianPruner(n_startup_trials=tc.pruner_startup_trials, n_warmup_steps=0)


def slot_sampler(config: dict, slot: int):
    """TPE seeded with ``tune.seed + slot``: the settings a slot's trial gets depend on the
    study's finished trials and the slot alone, not on how many suggestions this process has
    made before. So a worker rerun after a kill suggests what the undisturbed run did (TPE
    ignores the failed, interrupted trial)."""
    import optuna

    return optuna.samplers.TPESampler(seed=tune_config(config).seed + int(slot))


def open_study(config: dict, data_path, storage=None):
    """Create or load the study (the configured pruner; :func:`run_worker` sets the sampler of each slot)."""
    import optuna

    quiet_optuna()
    storage = storage if storage is not None else open_storage(storage_spec(config))
    return optuna.create_study(study_name=study_name(config, data_path), storage=storage,
                               sampler=slot_sampler(config, 0), pruner=make_pruner(config), direction="minimize",
                               load_if_exists=True)


def quiet_optuna() -> None:
    """Optuna logs through the project's logging (stderr, ``--log-level``), not its own handler."""
    import optuna

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    optuna.logging.set_verbosity(logging.getLogger().getEffectiveLevel())


# ------------------------------------------------------------------------- workers
def worker_slots(config: dict, worker: int) -> list[int]:
    tc = tune_config(config)
    if not 0 <= worker < tc.workers:
        raise ConfigError(f"config key 'tune.workers': {tc.workers} workers have no worker {worker} "
                          f"(workers are 0 .. {tc.workers - 1})")
    return [s for s in range(tc.n_trials) if s % tc.workers == worker]


def open_slots(study, slots: list[int]) -> list[int]:
    """``slots`` that no finished trial holds: completed, pruned, or failed because its
    training diverged (an outcome of its settings). A trial that failed otherwise (an error
    since fixed) leaves its slot open. A trial of these slots still marked running is left
    from a killed job of this worker: it is marked failed and ``interrupted``."""
    from optuna.trial import TrialState

    done = set()
    for t in study.get_trials(deepcopy=False):
        slot = t.user_attrs.get("slot")
        if slot not in slots:
            continue
        if t.state == TrialState.RUNNING:
            log.warning(f"trial {t.number} (slot {slot}) was left running by an interrupted job: marked failed")
            study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        elif t.state in (TrialState.COMPLETE, TrialState.PRUNED) or t.user_attrs.get("diverged"):
            done.add(slot)
    return [s for s in slots if s not in done]


def trial_record(t) -> dict:
    """One trial as the worker records and study.json lists it."""
    return {"number": t.number, "slot": t.user_attrs.get("slot"), "worker": t.user_attrs.get("worker"),
            "state": t.state.name, "value": t.value, "params": dict(t.params)}


def run_worker(config: dict, data_path, worker: int, threads: int | None = None, progress: bool = True) -> dict:
    """Run worker ``worker``'s open trial slots of the study; returns its record."""
    space = search_space(config)
    slots = worker_slots(config, worker)
    spec = storage_spec(config)
    study = open_study(config, data_path, open_storage(spec))
    todo = open_slots(study, slots)
    log.info(f"worker {worker} of {tune_config(config).workers}: study {study.study_name} in "
             f"{describe_storage(spec)}; slots {slots}, {len(todo)} to run")
    for slot in todo:
        study.sampler = slot_sampler(config, slot)
        study.optimize(make_objective(config, data_path, space, worker, slot, threads, progress),
                       n_trials=1, catch=(TrainingDivergedError,))
        t = _last_trial_of(study, worker, slot)
        log.info(f"trial {t.number} (slot {slot}): {t.state.name.lower()}"
                 + (f", value {t.value:.4f}" if t.value is not None else ""))
    mine = [trial_record(t) for t in study.get_trials(deepcopy=False) if t.user_attrs.get("slot") in slots]
    return {"study": study.study_name, "storage": describe_storage(spec), "worker": worker, "slots": slots,
            "trials": mine}


def _last_trial_of(study, worker: int, slot: int):
    trials = [t for t in study.get_trials(deepcopy=False)
              if t.user_attrs.get("slot") == slot and t.user_attrs.get("worker") == worker]
    return trials[-1]


def write_record(path, record: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")


# ------------------------------------------------------------------------ command
def main(argv=None) -> int:
    ap = cli.parser("python -m training.tune", __doc__, progress=True,
                    threads="torch CPU threads of a trial (default: the usable cores; the rule's threads "
                            "in the workflow)")
    cli.add_config(ap, required=True)
    ap.add_argument("--data", required=True,
                    help="processed zarr of the tuned experiment (region1.zarr for exp1, concat.zarr for exp2)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--worker", type=int, default=None, metavar="K",
                      help="run worker K's trials (0 .. tune.workers - 1) and write their record (JSON) to --out")
    mode.add_argument("--summarise", action="store_true", help="summarise the study into the folder --out")
    ap.add_argument("--out", required=True,
                    help="with --worker: the worker's record (JSON); otherwise the results folder (results/tune)")

    def body(args) -> int:
        from training.tune_summary import summarise

        config = load_config(args.config)
        if args.worker is not None:
            write_record(args.out, run_worker(config, args.data, args.worker, args.threads, not args.no_progress))
            return 0
        if not args.summarise:
            for k in range(tune_config(config).workers):
                run_worker(config, args.data, k, args.threads, not args.no_progress)
        summarise(config, args.data, args.out)
        return 0

    return cli.run(ap, body, argv)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
