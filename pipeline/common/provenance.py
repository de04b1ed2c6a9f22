"""Provenance shared by every output: versions of the packages that produced it."""
from __future__ import annotations

import platform
from importlib import metadata


def package_versions(packages) -> dict:
    """{'python': version, package: version or None} for the given distribution names."""
    out: dict = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
