"""Verification of the rain forecasts: streaming scores, baselines, paired block
bootstrap, figures and the report (entry point: ``python -m evaluation.evaluate``)."""
