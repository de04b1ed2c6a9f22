"""The embedded default data: a synthetic nature run (OSSE) that writes raw files in the
real formats (``python -m pipeline.nature_run``)."""
