"""Export a trained checkpoint to ONNX and check ONNX Runtime against PyTorch.

    python -m training.export --checkpoint RUN/checkpoint.pt --out RUN/model.onnx [--opset 17] [--no-check]

The graph takes ``x`` (batch, T, C, H, W) float32 with a dynamic batch axis and the
training grid (H, W); it returns ``rain`` (batch, 1, H, W) on the target scale (see the
``target_transform`` metadata entry). The check feeds a random batch of 2 to both and
fails when the largest difference exceeds ``atol + rtol * |torch|``.
"""
from __future__ import annotations

import logging
import sys
import warnings

import numpy as np
import torch

from pipeline.common import cli
from pipeline.common.atomic import atomic_path
from training import checkpoint as ckpt_io


log = logging.getLogger("training.export")


class ExportMismatchError(RuntimeError):
    """ONNX Runtime's output differs from PyTorch's."""


cli.register_error(ExportMismatchError)


def export(checkpoint, out, opset: int = 17, check: bool = True, atol: float = 1e-4, rtol: float = 1e-3) -> float:
    """Write ``out`` (atomically) and return the max |onnx - torch| of the check (0 if skipped)."""
    import onnx

    ck = ckpt_io.load(checkpoint)
    model = ckpt_io.model_from_checkpoint(ck, "cpu")
    t = int(ck["frames"]["input_steps"])
    c = int(ck["model_args"]["in_channels"])
    h, w = (int(v) for v in ck["data"]["grid"])
    example = torch.zeros(1, t, c, h, w)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(tmp), input_names=["x"], output_names=["rain"],
            dynamic_axes={"x": {0: "batch"}, "rain": {0: "batch"}}, opset_version=opset, dynamo=False,
        )
        proto = onnx.load(str(tmp))
        onnx.checker.check_model(proto)
        meta = {"target_transform": ck["train"]["target_transform"], "exp": str(ck["exp"]),
                "seed": str(ck["seed"]), "checkpoint_sha256": ckpt_io.sha256_of(checkpoint)}
        for k, v in meta.items():
            proto.metadata_props.add(key=k, value=v)
        onnx.save(proto, str(tmp))
    if not check:
        return 0.0
    return check_onnx(model, out, (2, t, c, h, w), atol, rtol)


def check_onnx(model, path, shape, atol: float = 1e-4, rtol: float = 1e-3) -> float:
    import onnxruntime as ort

    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x.numpy()})[0]
    if got.shape != ref.shape:
        raise ExportMismatchError(f"{path}: ONNX output shape {got.shape} != torch {ref.shape}")
    diff = np.abs(got - ref)
    if not np.all(diff <= atol + rtol * np.abs(ref)):
        raise ExportMismatchError(f"{path}: ONNX Runtime differs from PyTorch by up to {diff.max():.3g}")
    return float(diff.max())


def main(argv=None) -> int:
    ap = cli.parser("python -m training.export", __doc__)
    ap.add_argument("--checkpoint", required=True, help="checkpoint.pt of a training run")
    ap.add_argument("--out", required=True, help="ONNX file to write (model.onnx)")
    ap.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    ap.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs PyTorch check")

    def body(args) -> int:
        diff = export(args.checkpoint, args.out, args.opset, check=not args.no_check)
        if args.no_check:
            log.info("%s written (not checked against PyTorch)", args.out)
        else:
            log.info("%s: ONNX Runtime matches PyTorch (max abs diff %.2e)", args.out, diff)
        return 0

    return cli.run(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
