"""The summary of a tuning study (:mod:`training.tune`), written atomically as one folder
(``results/tune/``):

- ``best_params.yaml``: the best completed trial's settings as a config overlay (the tuned
  keys only, in config structure; ``tune.search_space.loss`` sets ``train.loss`` and
  ``model.head``), checked to validate on top of the config;
  ``snakemake results/exp2 --configfile config.yaml results/tune/best_params.yaml``;
- ``trials.csv``: every trial of the study (number, worker, slot, state, value, epochs,
  parameters, per-epoch validation scores and losses, seconds);
- ``optimization_history.png``: each trial's validation score and the best so far;
- ``param_importances.png``: Optuna's PED-ANOVA importance of each tuned setting (needs at
  least 2 completed trials; otherwise a figure saying so);
- ``study.json``: provenance (study name, storage without password, sampler and seed,
  pruner, objective, config hash, data, trial counts per state and worker, the best trial,
  package versions).
"""
from __future__ import annotations

import copy
import csv
import io
import json
import logging
import warnings
from pathlib import Path

import yaml

from pipeline.common.atomic import atomic_path
from pipeline.common.config import config_hash, deep_update, validate_config
from pipeline.common.provenance import package_versions
from training.config import tune_config
from training.tune import (TARGETS, TuneError, describe_storage, open_storage, overlay, quiet_optuna, storage_spec,
                           study_name, trial_record)

log = logging.getLogger("training.tune")

PACKAGES = ("optuna", "torch", "numpy", "pandas", "sqlalchemy", "matplotlib")


def load_study(config: dict, data_path):
    """The study of ``config`` and the data; :class:`TuneError` when the storage has none."""
    import optuna

    quiet_optuna()
    spec, name = storage_spec(config), study_name(config, data_path)
    if spec.startswith("journal:") and not Path(spec[len("journal:"):]).is_file():
        raise TuneError(f"{spec}: no such journal file; run the workers first (python -m training.tune --worker K)")
    try:
        return optuna.load_study(study_name=name, storage=open_storage(spec))
    except KeyError:
        raise TuneError(f"{describe_storage(spec)}: no study {name} (the workers of these settings "
                        f"have not run: python -m training.tune --worker K)") from None


def summarise(config: dict, data_path, out) -> dict:
    """Write the summary folder ``out`` of the study; returns the content of study.json."""
    from optuna.trial import TrialState

    study = load_study(config, data_path)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    if not complete:
        raise TuneError(f"study {study.study_name}: no trial completed ({counts}); nothing to choose from")
    best = min(complete, key=lambda t: (t.value, t.number))
    tuned = overlay(best.params)
    validate_config(deep_update(copy.deepcopy(config), tuned))  # the overlay is accepted as a config file
    objective = tune_config(config).objective
    names = [n for n in TARGETS if any(n in t.params for t in trials)]
    info = provenance(config, data_path, study, trials, best, counts)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        write_best_params(tmp / "best_params.yaml", tuned, best, study.study_name, objective)
        write_trials_csv(tmp / "trials.csv", trials, names)
        plot_history(tmp / "optimization_history.png", trials, objective, study.study_name)
        plot_importances(tmp / "param_importances.png", study, len(complete))
        (tmp / "study.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    log.info(f"study {study.study_name}: {counts}; best trial {best.number} (validation {objective} "
             f"{best.value:.4f}): {tuned}; written to {out}")
    return info


def provenance(config: dict, data_path, study, trials, best, counts: dict) -> dict:
    from pipeline.common import cli

    tc = tune_config(config)
    workers: dict = {}
    for t in trials:
        w = str(t.user_attrs.get("worker"))
        workers.setdefault(w, {})
        workers[w][t.state.name.lower()] = workers[w].get(t.state.name.lower(), 0) + 1
    return {
        "study": study.study_name, "storage": describe_storage(storage_spec(config)),
        "experiment": tc.experiment, "data": str(data_path), "config_hash": config_hash(config),
        "objective": {"score": tc.objective, "split": "val", "direction": "minimize",
                      "value": "the score of the trial's epoch of lowest validation loss"},
        "sampler": {"name": "TPESampler", "seed": tc.seed, "slot_seed": "seed + slot"},
        "pruner": {"name": tc.pruner, "startup_trials": tc.pruner_startup_trials if tc.pruner == "median" else None},
        "n_trials": tc.n_trials, "workers": tc.workers, "epochs_per_trial": tc.epochs,
        "search_space": tc.search_space, "trials": counts, "trials_per_worker": workers,
        "best": {**trial_record(best), "overlay": overlay(best.params)},
        "versions": {"upstream-rain": cli.version(), **package_versions(PACKAGES)},
    }


def write_best_params(path: Path, tuned: dict, best, name: str, objective: str) -> None:
    head = (f"# Best trial of the Optuna study {name} (study.json): trial {best.number},\n"
            f"# validation {objective} {best.value:.6g}. A config overlay of the tuned keys only:\n"
            f"#   snakemake results/exp2 --configfile config.yaml results/tune/best_params.yaml\n")
    path.write_text(head + yaml.dump(tuned, Dumper=_OverlayDumper, sort_keys=True, default_flow_style=False))


class _OverlayDumper(yaml.SafeDumper):
    """Block mappings, lists on one line (``hidden: [32, 64]``), as config.yaml writes them."""


_OverlayDumper.add_representer(
    list, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True))


def write_trials_csv(path: Path, trials, names: list[str]) -> None:
    fields = ["number", "worker", "slot", "state", "value", "epochs", *[f"param_{n}" for n in names],
              "scores", "val_loss", "seconds", "interrupted"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for t in trials:
        steps = sorted(t.intermediate_values)
        seconds = t.duration.total_seconds() if t.duration is not None else ""
        w.writerow({
            "number": t.number, "worker": t.user_attrs.get("worker", ""), "slot": t.user_attrs.get("slot", ""),
            "state": t.state.name, "value": "" if t.value is None else t.value,
            "epochs": t.user_attrs.get("epochs", ""),
            **{f"param_{n}": t.params.get(n, "") for n in names},
            "scores": ";".join(f"{t.intermediate_values[s]:.6g}" for s in steps),
            "val_loss": ";".join(f"{v:.6g}" for v in t.user_attrs.get("val_loss", [])),
            "seconds": f"{seconds:.1f}" if seconds != "" else "", "interrupted": bool(t.user_attrs.get("interrupted")),
        })
    path.write_text(buf.getvalue())


def _figure(size=(6.5, 4.0)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=size)


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def plot_history(path: Path, trials, objective: str, name: str) -> None:
    """Completed trials' values, pruned trials' last scores, and the best value so far."""
    from optuna.trial import TrialState

    plt, fig, ax = _figure()
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    ax.plot([t.number for t in done], [t.value for t in done], "o", label="completed")
    if pruned:
        ax.plot([t.number for t in pruned], [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
                "x", color="grey", label="pruned (score when stopped)")
    best, run = [], float("inf")
    for t in done:
        run = min(run, t.value)
        best.append(run)
    ax.step([t.number for t in done], best, where="post", color="C3", label="best so far")
    failed = sum(t.state == TrialState.FAIL for t in trials)
    ax.set_xlabel("trial")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(f"validation {objective}" + (" (mm / 12 h)" if objective == "crps" else ""))
    ax.set_title(f"{name}: {len(done)} completed, {len(pruned)} pruned, {failed} failed", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(plt, fig, path)


def plot_importances(path: Path, study, n_complete: int) -> None:
    """PED-ANOVA importances, or a figure saying why there are none."""
    import optuna

    reason = None
    if n_complete < 2:
        reason = f"parameter importance needs at least 2 completed trials;\nthis study has {n_complete}"
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imp = optuna.importance.get_param_importances(study)
        except (ValueError, RuntimeError) as err:
            reason = f"parameter importance could not be computed:\n{err}"
    plt, fig, ax = _figure()
    if reason is not None or not imp:
        ax.text(0.5, 0.5, reason or "no tuned parameter varied", ha="center", va="center", wrap=True)
        ax.set_axis_off()
    else:
        names = list(imp)[::-1]
        ax.barh(names, [imp[n] for n in names], color="C0")
        ax.set_xlabel("importance (PED-ANOVA, sums to 1)")
        ax.set_title(f"{study.study_name}: {n_complete} completed trials", fontsize=9)
    _save(plt, fig, path)
