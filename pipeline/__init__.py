"""Raw observations -> QC'd profiles -> gridded, normalised zarr tensors."""

__version__ = "0.1.0"
