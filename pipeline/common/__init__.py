"""Shared by every stage and by training/ and evaluation/: config, errors, atomic writes,
provenance, the dask scheduler and the command-line convention."""
