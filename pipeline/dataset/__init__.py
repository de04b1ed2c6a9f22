"""Dataset stage: monthly gridded fragments -> normalised zarr tensors and loss masks
(``python -m pipeline.dataset``)."""
