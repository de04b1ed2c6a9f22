"""The report's captions follow the configured confidence level."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import jinja2

REPO = Path(__file__).resolve().parents[2]


def test_snakemake_caption_uses_the_configured_confidence():
    text = (REPO / "report" / "comparison.rst").read_text()
    params = SimpleNamespace(title="exp2", exp="exp2", reference="exp1")
    for conf, pct in ((0.95, "95%"), (0.9, "90%"), (0.995, "99.5%")):
        fake = SimpleNamespace(config={"evaluation": {"confidence": conf}}, params=params)
        rendered = jinja2.Template(text).render(snakemake=fake).replace("\n", " ")
        assert f"{pct} paired" in rendered and "exp2-vs-exp1 comparison" in rendered, rendered
