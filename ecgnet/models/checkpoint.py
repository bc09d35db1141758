"""Checkpoints: plain dicts (model args + weights + config + step), saved atomically, loaded safely.

Schema (``format_version`` 1): kind, format_version, versions, task, class_names,
model_args, model (the evaluated weights: the moving average when enabled),
train_model (raw weights or None), config, epoch, step, optimizer, scheduler,
generator, train_state, history, val_metrics, pretrained, split, in best.pt
calibration (the temperature fitted on the validation split, ``ecgnet.training.calibration``), and
checksum: a SHA-256 over all of the above, written at save and verified at every load.
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
from .model import BeatClassifier
from .registry import ASSEMBLED, model_class

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CHECKPOINT_KIND = "ecgnet-checkpoint"
HEAD_PREFIX = "head."  # every registered model keeps its head here; the rest is the trunk


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
    return ckpt


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
    if ckpt.get("model_name") in ASSEMBLED:
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
