"""Export trained weights for deployment.

    ecgnet export --checkpoint mitbih --onnx mitbih.onnx               # ONNX Runtime, no PyTorch
    ecgnet export --checkpoint log/<run>/best.pt --safetensors models/mine

--onnx writes one .onnx file: input 'beats' (batch, 187) [and 'rhythm' (batch, 5) for
rhythm models], output calibrated 'probabilities'; class names and the beat recipe are
in its metadata. Run it with 'ecgnet predict --checkpoint FILE.onnx'.
--safetensors writes a model file: NAME.safetensors (weights) and NAME.json (its card,
with the weights' SHA-256), usable wherever --checkpoint is.
"""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a shipped model name, a best.pt / last.pt or a model file")
    p.add_argument("--onnx", metavar="FILE", help="write an ONNX model (.onnx)")
    p.add_argument("--safetensors", metavar="PATH", help="write a model file PATH.safetensors + PATH.json")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..constants import ONNX_SUFFIX
    from ..errors import EcgnetError
    from ..models.pretrained import resolve_checkpoint, write_model_file
    from ..models.registry import is_record_model
    from ..serving.export import export_onnx

    if not args.onnx and not args.safetensors:
        raise EcgnetError("nothing to export: give --onnx FILE and/or --safetensors PATH")
    if args.onnx and Path(args.onnx).suffix != ONNX_SUFFIX:
        raise EcgnetError(f"--onnx {args.onnx}: the file name must end in {ONNX_SUFFIX}")
    targets = [(t, export) for t, export in ((args.onnx, export_onnx), (args.safetensors, write_model_file)) if t]
    for target, _ in targets:
        if not Path(target).parent.is_dir():
            raise EcgnetError(f"folder {Path(target).parent} does not exist; create it or choose another path")
    ckpt = resolve_checkpoint(args.checkpoint)
    if args.onnx and is_record_model(ckpt.get("model_name", "")):
        raise EcgnetError(f"{args.checkpoint} is a record-level model ('{ckpt['model_name']}'): ONNX export covers beat models; "
                          "export it with --safetensors PATH")
    for target, export in targets:
        print(f"wrote {export(ckpt, target)}")
    return 0
