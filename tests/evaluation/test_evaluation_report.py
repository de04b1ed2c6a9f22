"""The report's captions follow the configured confidence level."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import jinja2

REPO = Path(__file__).resolve().parents[2]


def test_snakemake_caption_uses_the_configured_confidence():
    text = (REPO / "report" / "exp2.rst").read_text()
    for conf, pct in ((0.95, "95%"), (0.9, "90%"), (0.995, "99.5%")):
        fake = SimpleNamespace(config={"evaluation": {"confidence": conf}})
        rendered = jinja2.Template(text).render(snakemake=fake)
        assert f"{pct} paired" in rendered.replace("\n", " "), rendered
