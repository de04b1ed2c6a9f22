"""Pruning through train()'s on_epoch hook with Optuna's real pruners; a pruned trial stops cleanly."""
from __future__ import annotations

import tempfile

import optuna
import pytest
from optuna.trial import TrialState

from tests.tune.conftest import tune_settings
from training.tune import EpochReporter, make_pruner, open_slots, open_study, run_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _run(study, scores: list[float], epochs: int):
    """One trial whose epochs score ``scores`` (stubbed validation scores, val_loss = score)."""
    def objective(trial):
        it = iter(scores)
        reporter = EpochReporter(trial, "crps", epochs, score=lambda trainer: next(it))
        for epoch, s in enumerate(scores, 1):
            reporter(epoch, {"val_loss": s}, None)
        return reporter.value()

    study.optimize(objective, n_trials=1)
    return study.trials[-1]


def test_median_pruner_prunes_a_trial_much_worse_than_completed_ones():
    study = optuna.create_study(direction="minimize", pruner=make_pruner(tune_settings(pruner_startup_trials=2)))
    assert _run(study, [1.0, 0.9, 0.8], 3).state == TrialState.COMPLETE
    assert _run(study, [1.2, 1.0, 0.9], 3).state == TrialState.COMPLETE
    bad = _run(study, [5.0, 4.0, 3.0], 3)
    assert bad.state == TrialState.PRUNED
    assert sorted(bad.intermediate_values) == [1]  # stopped after its first epoch
    good = _run(study, [0.9, 0.8, 0.7], 3)
    assert good.state == TrialState.COMPLETE and good.value == 0.7  # the epoch of lowest val_loss


def test_no_trial_is_pruned_before_the_startup_trials_or_at_its_last_epoch():
    study = optuna.create_study(direction="minimize", pruner=make_pruner(tune_settings(pruner_startup_trials=2)))
    assert _run(study, [1.0, 0.9], 2).state == TrialState.COMPLETE
    assert _run(study, [9.0, 9.0], 2).state == TrialState.COMPLETE  # one completed trial: still starting up
    assert _run(study, [50.0], 1).state == TrialState.COMPLETE  # its only epoch is its last: nothing to save


def test_hyperband_pruner_spans_the_trial_epochs():
    pruner = make_pruner(tune_settings(pruner="hyperband", epochs=4))
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert (pruner._min_resource, pruner._max_resource) == (1, 4)


def test_a_pruned_trial_stops_real_training_cleanly(tiny_store, tmp_path, monkeypatch):
    """Real training on the tiny store: two completed trials of the study scored far better, so
    the worker's trial is pruned after its first of 2 epochs; it is marked pruned, its record
    says so, and no file of it is left."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the trial's run folder goes
    cfg = tune_settings(epochs=2, storage=f"journal:{tmp_path / 'study.journal'}")
    study = open_study(cfg, tiny_store)
    for slot in (100, 101):  # finished trials of other slots
        study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.01,
                                                  intermediate_values={1: 0.01, 2: 0.01}, user_attrs={"slot": slot}))
    record = run_worker(cfg, tiny_store, 0, threads=1, progress=False)
    (trial,) = [t for t in optuna.load_study(study_name=study.study_name, storage=study._storage).trials
                if t.user_attrs.get("slot") == 0]
    assert trial.state == TrialState.PRUNED and sorted(trial.intermediate_values) == [1]
    assert trial.user_attrs["epochs"] == 1 and trial.user_attrs["worker"] == 0
    assert [(r["slot"], r["state"]) for r in record["trials"]] == [(0, "PRUNED")]
    assert list(scratch.glob("tune-trial*")) == []  # the trial's run folder is gone
    assert run_worker(cfg, tiny_store, 0)["trials"] == record["trials"]  # a rerun finds its slot done


def test_a_trial_left_running_by_a_killed_job_is_failed_and_its_slot_rerun():
    study = optuna.create_study(direction="minimize")
    left = study.ask()
    left.set_user_attr("slot", 0)
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=1.0, user_attrs={"slot": 2}))
    assert open_slots(study, [0, 2, 4]) == [0, 4]
    frozen = study.trials[left.number]
    assert frozen.state == TrialState.FAIL and frozen.user_attrs["interrupted"] is True
    assert open_slots(study, [0, 2, 4]) == [0, 4]  # an interrupted trial does not fill its slot


@pytest.mark.parametrize("objective", ["crps", "val_loss"])
def test_trial_value_is_the_score_of_the_epoch_of_lowest_validation_loss(objective):
    class Trial:
        number = 0

        def report(self, value, step):
            pass

        def should_prune(self):
            return False

    reporter = EpochReporter(Trial(), objective, 3, score=lambda trainer, it=iter([3.0, 1.0, 2.0]): next(it))
    for epoch, vl in enumerate([0.5, 0.7, 0.4], 1):
        reporter(epoch, {"val_loss": vl}, None)
    assert reporter.value() == (2.0 if objective == "crps" else 0.4)


def test_a_diverged_trial_keeps_its_slot_and_another_failure_frees_it():
    study = optuna.create_study(direction="minimize")
    for slot, attrs in ((0, {"diverged": "epoch 1: loss is nan"}), (2, {})):
        study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"slot": slot, **attrs}))
    assert open_slots(study, [0, 2]) == [2]


def _slot_outcomes(record) -> dict:
    """{slot: (state, value, params)} of a worker's finished, not interrupted trials."""
    return {r["slot"]: (r["state"], r["value"], r["params"]) for r in record["trials"] if r["state"] != "FAIL"}


def test_a_worker_rerun_after_a_kill_repeats_the_undisturbed_trials(tiny_store, tmp_path):
    """One worker, 3 slots. Undisturbed, against a run killed during slot 1 (slot 0 finished,
    slot 1's trial left running) and then rerun: every slot gets the same settings and score,
    because each slot seeds its own sampler (tune.seed + slot)."""
    def settings(name, n_trials):
        return tune_settings(workers=1, n_trials=n_trials, epochs=1, storage=f"journal:{tmp_path / name}")

    undisturbed = run_worker(settings("a.journal", 3), tiny_store, 0, threads=1, progress=False)
    run_worker(settings("b.journal", 1), tiny_store, 0, threads=1, progress=False)  # slot 0, then the kill:
    cfg = settings("b.journal", 3)
    study = open_study(cfg, tiny_store)
    left = study.ask()  # slot 1's trial, left running by the killed job
    left.set_user_attr("slot", 1)
    left.set_user_attr("worker", 0)
    rerun = run_worker(cfg, tiny_store, 0, threads=1, progress=False)
    assert [r["state"] for r in rerun["trials"] if r["slot"] == 1][0] == "FAIL"  # the interrupted one
    assert len({p["lr"] for _, _, p in _slot_outcomes(undisturbed).values()}) == 3  # slots differ
    assert _slot_outcomes(rerun) == _slot_outcomes(undisturbed)
