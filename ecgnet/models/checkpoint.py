"""Checkpoints: plain dicts (model args + weights + config + step), saved atomically, loaded safely.

The schema is code: ``new_checkpoint`` builds every checkpoint (the trainer's last.pt / best.pt, combined
and linear models, a model file read back), and its docstring names each entry. ``save_checkpoint`` adds
``checksum``, a SHA-256 over all other entries, which every load verifies.
"""
from __future__ import annotations

import hashlib
import logging
import pickle
import platform
import re
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..atomic import atomic_write
from ..errors import EcgnetError
from .combined import upgrade_assembled
from .model import BeatClassifier
from .registry import is_assembled, model_class

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CHECKPOINT_KIND = "ecgnet-checkpoint"
HEAD_PREFIX = "head."  # every registered model keeps its head here; the rest is the trunk


# Entries only some checkpoints hold: the training state of a resumable run, and the parts of a combined model.
RESUME_KEYS = ("optimizer", "scheduler", "generator", "train_state", "history")
OPTIONAL_KEYS = (*RESUME_KEYS, "members", "card")


def new_checkpoint(task: str, class_names: list[str], model_name: str, model_args: dict, weights: dict, config: dict,
                   recipe: dict, split: dict, *, epoch: int = 0, step: int = 0, train_model: dict | None = None,
                   val_metrics: dict | None = None, pretrained: str | None = None, calibration: dict | None = None,
                   **optional) -> dict:
    """A checkpoint dict (``format_version`` 1). Its entries:

    kind, format_version, versions (of ecgnet and the libraries that wrote it); task and class_names;
    model_name (the registry's) and model_args, which rebuild the model; model: the evaluated weights (the
    moving average when enabled); train_model: the raw weights or None; config (every key); recipe (how the
    beats were cut, ``ecgnet.data.datasets.PAPER_RECIPE``); split (data_dir, seed, fractions, val_records,
    sizes, test_indices for PTB); epoch and step; val_metrics; pretrained (the trunk's source); calibration
    (best.pt and assembled models: the temperature, ``ecgnet.training.calibration``) when given; and the
    ``OPTIONAL_KEYS`` passed: optimizer, scheduler, generator, train_state and history of a resumable run,
    members (the parts of a combined model), card (a model file's JSON card).
    """
    unknown = set(optional) - set(OPTIONAL_KEYS)
    if unknown:
        raise ValueError(f"not checkpoint entries: {', '.join(sorted(unknown))}")
    ckpt = {"kind": CHECKPOINT_KIND, "format_version": FORMAT_VERSION, "versions": library_versions(), "task": task,
            "class_names": list(class_names), "model_name": model_name, "model_args": model_args, "model": weights,
            "train_model": train_model, "config": config, "epoch": epoch, "step": step, "val_metrics": val_metrics,
            "pretrained": pretrained, "recipe": recipe, "split": split}
    if calibration is not None:
        ckpt["calibration"] = calibration
    return ckpt | optional


def library_versions() -> dict:
    import sklearn
    return {"ecgnet": __version__, "torch": str(torch.__version__), "numpy": np.__version__,
            "sklearn": sklearn.__version__, "python": platform.python_version()}


def _feed(digest: "hashlib._Hash", value: object) -> None:
    """Hash a checkpoint's contents in a fixed order: dict keys sorted, tensors by dtype, shape and bytes."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            digest.update(repr(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"V{value!r}".encode())


def checkpoint_digest(checkpoint: dict) -> str:
    """SHA-256 over every value of a checkpoint except its own ``checksum`` entry."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in checkpoint.items() if k != "checksum"})
    return digest.hexdigest()


def save_checkpoint(path: str | Path, checkpoint: dict) -> None:
    """Write atomically (temp file, fsync, rename) with a SHA-256 of the contents that loading verifies.

    A crash at any moment leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    try:
        with atomic_write(path) as f:
            torch.save(checkpoint | {"checksum": checkpoint_digest(checkpoint)}, f)
    except OSError as e:
        raise EcgnetError(f"could not save checkpoint {path} ({e.strerror or e}); the previous {path.name} is intact. "
                          "Free disk space or fix permissions, then resume") from None


def load_checkpoint(path: str | Path) -> dict:
    """Load and sanity-check an ecgnet checkpoint (``weights_only``: no code can run from it)."""
    path = Path(path)
    if not path.exists():
        raise EcgnetError(f"checkpoint {path} not found; train one with 'ecgnet train' (it writes log/<run>/best.pt)")
    if path.is_dir():
        raise EcgnetError(f"checkpoint {path} is a directory; pass a .pt file such as {path}/best.pt")
    corrupt = f"checkpoint {path} is truncated or corrupt"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise EcgnetError(f"checkpoint {path} holds a Python object ({found.group(1)}) that is not allowed to load: "
                              "ecgnet loads weights only, so a checkpoint cannot run code; use a checkpoint written by ecgnet train") from None
        raise EcgnetError(f"{corrupt} (not a readable PyTorch file); use another checkpoint, e.g. last.pt or best.pt of the run") from None
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - damaged bytes reach torch's zip reader and unpickler, which raise many types
        raise EcgnetError(f"{corrupt} ({e.__class__.__name__}); use another checkpoint, e.g. last.pt or best.pt of the run") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != CHECKPOINT_KIND:
        raise EcgnetError(f"checkpoint {path} is not an ecgnet checkpoint (no '{CHECKPOINT_KIND}' marker); pass a best.pt or last.pt written by ecgnet train")
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise EcgnetError(f"checkpoint {path} has format version {version}, newer than this ecgnet understands ({FORMAT_VERSION}); upgrade ecgnet")
    verify_checksum(ckpt, path)
    return upgrade(ckpt)


def upgrade(ckpt: dict) -> dict:
    """A checkpoint or model file of an older ecgnet as this one reads it: its ``ensemble`` or ``pooled`` model
    as the ``combined`` model it is now (same weights, renamed)."""
    if "model_args" not in ckpt or "model" not in ckpt:
        return ckpt
    name, args, weights = upgrade_assembled(ckpt.get("model_name", "kachuee"), ckpt["model_args"], ckpt["model"])
    return ckpt if args is ckpt["model_args"] else ckpt | {"model_name": name, "model_args": args, "model": weights}


def verify_checksum(ckpt: dict, path: Path) -> None:
    """Refuse a checkpoint whose contents no longer match the SHA-256 written with them."""
    if "checksum" not in ckpt:
        log.warning("note: checkpoint %s has no checksum (written by ecgnet < 0.3); loading it unverified", path)
        return
    if checkpoint_digest(ckpt) != ckpt["checksum"]:
        raise EcgnetError(f"checkpoint {path} is corrupt: checksum mismatch (its contents changed after it was written); "
                          "use last.pt / best.pt of the run or retrain")


def temperature_of(ckpt: dict) -> float:
    """The calibration temperature stored with the weights (1: uncalibrated, e.g. last.pt or older checkpoints)."""
    return float((ckpt.get("calibration") or {}).get("temperature", 1.0))


def model_from_checkpoint(ckpt: dict, source: str = "checkpoint") -> BeatClassifier:
    """Rebuild the model from the checkpoint's own model name and hyper-parameters and load its weights."""
    name = ckpt.get("model_name", "kachuee")
    try:
        model = model_class(name)(**ckpt["model_args"])
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise EcgnetError(f"{source}: weights do not match the '{name}' architecture ({str(e).splitlines()[0][:160]})") from None
    return model


def load_trunk(model: BeatClassifier, ckpt: dict, source: str) -> None:
    """Copy the conv trunk of a pretrained MIT-BIH checkpoint into ``model``."""
    if ckpt.get("task") != "mitbih":
        raise EcgnetError(f"pretrained checkpoint {source} is a '{ckpt.get('task')}' model, not an MIT-BIH trunk; pass a checkpoint trained with task 'mitbih'")
    theirs = ckpt.get("model_args", {})
    if is_assembled(ckpt.get("model_name", "kachuee")):
        raise EcgnetError(f"pretrained checkpoint {source} holds a '{ckpt.get('model_name')}' model, not one trained net; "
                          "pass one member's best.pt (its fold<F>/best.pt) as the trunk")
    if not isinstance(model, model_class(ckpt.get("model_name", "kachuee"))):
        raise EcgnetError(f"pretrained checkpoint {source} is a '{ckpt.get('model_name', 'kachuee')}' model; set 'model' to match it")
    for key, value in model.model_args.items():
        if key not in ("n_classes", "rhythm_dim") and theirs.get(key) != value:
            raise EcgnetError(f"pretrained checkpoint {source} has {key}={theirs.get(key)}, this model has {value}; the architectures do not match")
    trunk = {k: v for k, v in ckpt["model"].items() if not k.startswith(HEAD_PREFIX)}
    expected = {k for k in model.state_dict() if not k.startswith(HEAD_PREFIX)}
    if set(trunk) != expected or any(trunk[k].shape != model.state_dict()[k].shape for k in trunk):
        raise EcgnetError(f"pretrained checkpoint {source}: its trunk weights do not match this model's trunk")
    model.load_state_dict(trunk, strict=False)
