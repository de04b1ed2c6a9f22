"""Suite-wide settings.

Hypothesis runs derandomised by default (the examples depend only on the test), so
``make test`` never passes once and fails the next time on the same code. A long random
campaign: ``HYPOTHESIS_PROFILE=random make test-all``.

``make test`` runs the tests in two processes (pytest-xdist, ``--dist load``), which take
tests in collection order as each finishes its previous ones. The few files of long
end-to-end runs are collected first, so that they do not start last and leave one process
working alone at the end. A session or module fixture is built in each process that needs
it (the tiny main job's run, ``tiny_run``, is made twice: about 50 s of CPU, still faster
than keeping its files in one process, measured).
"""
import os

from hypothesis import settings

settings.register_profile("derandomised", derandomize=True)
settings.register_profile("random", derandomize=False, max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomised"))

# Files with the longest runs (seconds on 2 cores), longest first.
LONG_FILES = [
    "tests/slurm/test_slurm_profile.py",  # 170
    "tests/workflow/test_workflow_e2e.py",  # 125
    "tests/workflow/test_workflow_attribution.py",  # 66
    "tests/radar/test_workflow_radar_snakemake.py",  # 49
    "tests/training/test_distributed.py",  # 40
    "tests/workflow/test_workflow_experiments.py",  # 24
]


def pytest_collection_modifyitems(session, config, items):
    """Long files first (stable: the order within a file and of other files is kept)."""
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(LONG_FILES)))
