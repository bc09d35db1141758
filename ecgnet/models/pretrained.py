"""Model files: trained weights as safetensors beside a JSON card, shipped inside the package by name.

A model file is ``NAME.safetensors`` (the evaluated weights, nothing executable) and
``NAME.json`` (everything needed to use them: task, class names, model name and args,
beat recipe, calibration temperature, the training config and split, the training data's
SHA-256, the measured figures, and the SHA-256 of the .safetensors checked at every load).
``resolve_checkpoint`` turns what a user passes as ``--checkpoint`` (a shipped name, a
model file, or a best.pt / last.pt) into one checkpoint dict.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..atomic import write_bytes
from ..cards import MODEL_FILE_KIND, WEIGHTS_DIR, read_card, shipped_models, shipped_names  # noqa: F401 (re-exported)
from ..checksums import sha256_bytes
from ..constants import MODEL_FILE_SUFFIX, ONNX_SUFFIX
from ..errors import EcgnetError
from .checkpoint import CHECKPOINT_KIND, FORMAT_VERSION, load_checkpoint, upgrade

# Keys of a checkpoint a model file carries over (everything but weights and optimiser state).
CARRIED_KEYS = ("task", "class_names", "model_name", "model_args", "recipe", "calibration", "config", "split",
                "epoch", "step", "val_metrics", "versions", "pretrained", "members")


def load_model_file(path: str | Path) -> dict:
    """A checkpoint dict from ``NAME.safetensors`` + ``NAME.json``, after checking the weights' SHA-256."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    path = Path(path).with_suffix(MODEL_FILE_SUFFIX)
    card = read_card(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EcgnetError(f"model file {path}: cannot read it ({e.strerror or e})") from None
    if sha256_bytes(data) != card.get("sha256"):
        raise EcgnetError(f"model file {path} is corrupt: its SHA-256 does not match the one in {path.with_suffix('.json').name}; "
                          "reinstall ecgnet (shipped models) or export the model again")
    try:
        weights = load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise EcgnetError(f"model file {path} is unreadable ({e.__class__.__name__}); export the model again") from None
    missing = [k for k in ("task", "class_names", "model_args") if k not in card]
    if missing:
        raise EcgnetError(f"model card {path.with_suffix('.json')} lacks {', '.join(missing)}; export the model again")
    return upgrade({"kind": CHECKPOINT_KIND, "format_version": FORMAT_VERSION, "model": weights, "card": card,
                    **{k: card[k] for k in CARRIED_KEYS if k in card}})


def resolve_checkpoint(spec: str | Path) -> dict:
    """The checkpoint dict for a shipped model name, a model file (.safetensors/.json) or a .pt checkpoint."""
    text = str(spec)
    if text in shipped_names():
        return load_model_file(WEIGHTS_DIR / text)
    path = Path(text)
    if path.suffix == ONNX_SUFFIX:
        raise EcgnetError(f"{path} is an ONNX model: run it with --backend onnxruntime (predict only)")
    if path.suffix in (MODEL_FILE_SUFFIX, ".json"):
        return load_model_file(path)
    if not path.exists() and path.suffix == "" and os.sep not in text and "/" not in text:
        raise EcgnetError(f"unknown model '{text}': shipped models are {', '.join(shipped_names()) or 'none'} "
                          "(list them with 'ecgnet models'), or pass a checkpoint path such as log/<run>/best.pt")
    return load_checkpoint(path)


def is_record_checkpoint(spec: str | Path) -> bool:
    """Whether ``spec`` (as ``resolve_checkpoint`` takes it) is a record-level model: one verdict per recording."""
    from .registry import is_record_model

    return is_record_model(resolve_checkpoint(spec).get("model_name", ""))


def write_model_file(ckpt: dict, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``ckpt``'s evaluated weights as ``path`` (.safetensors) and its card as the .json beside it."""
    from safetensors.torch import save as save_safetensors

    path = Path(path).with_suffix(MODEL_FILE_SUFFIX)
    data = save_safetensors({k: v.contiguous() for k, v in ckpt["model"].items()})
    card = {"kind": MODEL_FILE_KIND, "name": path.stem, **{k: ckpt[k] for k in CARRIED_KEYS if k in ckpt},
            **(extra or {}), "sha256": sha256_bytes(data)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, data)
        write_bytes(path.with_suffix(".json"), (json.dumps(card, indent=1) + "\n").encode())
    except OSError as e:
        raise EcgnetError(f"cannot write model file {path} ({e.strerror or e}); choose a writable folder") from None
    return path
