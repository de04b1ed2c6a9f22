"""Suite-wide settings.

Hypothesis runs derandomised by default (the examples depend only on the test), so
``make test`` never passes once and fails the next time on the same code. A long random
campaign: ``HYPOTHESIS_PROFILE=random make test-all``.
"""
import os

from hypothesis import settings

settings.register_profile("derandomised", derandomize=True)
settings.register_profile("random", derandomize=False, max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomised"))
