"""Gridding stage: region-grid geometry, objective analysis (Barnes/Cressman) of soundings
and gauge rain, and the command line (``python -m pipeline.gridding``)."""
