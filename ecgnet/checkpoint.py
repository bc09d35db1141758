"""Checkpoints: plain dicts (model args + weights + config + step), saved atomically, loaded safely.

Schema (``format_version`` 1): kind, format_version, versions, task, class_names,
model_args, model (the evaluated weights: the moving average when enabled),
train_model (raw weights or None), config, epoch, step, optimizer, scheduler,
generator, train_state, history, val_metrics, pretrained, split, and in best.pt
calibration (the temperature fitted on the validation split, ``ecgnet.calibration``).
"""
from __future__ import annotations

import pickle
import platform
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .atomic import atomic_write
from .errors import EcgnetError
from .model import ECGNet

FORMAT_VERSION = 1
CHECKPOINT_KIND = "ecgnet-checkpoint"
TRUNK_PREFIXES = ("stem.", "blocks.")


def library_versions() -> dict:
    import sklearn
    return {"ecgnet": __version__, "torch": str(torch.__version__), "numpy": np.__version__,
            "sklearn": sklearn.__version__, "python": platform.python_version()}


def save_checkpoint(path: str | Path, checkpoint: dict) -> None:
    """Write atomically: a temp file in the same folder, fsync, then rename over ``path``.

    A crash at any moment leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    try:
        with atomic_write(path) as f:
            torch.save(checkpoint, f)
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
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, IndexError, KeyError, TypeError,
            AttributeError, UnicodeDecodeError) as e:
        # torch's weights-only unpickler raises IndexError/KeyError on some random byte strings.
        raise EcgnetError(f"{corrupt} ({e.__class__.__name__}); use another checkpoint, e.g. last.pt or best.pt of the run") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != CHECKPOINT_KIND:
        raise EcgnetError(f"{path} is not an ecgnet checkpoint (no '{CHECKPOINT_KIND}' marker); pass a best.pt or last.pt written by ecgnet train")
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise EcgnetError(f"checkpoint {path} has format version {version}, newer than this ecgnet understands ({FORMAT_VERSION}); upgrade ecgnet")
    return ckpt


def temperature_of(ckpt: dict) -> float:
    """The calibration temperature stored with the weights (1: uncalibrated, e.g. last.pt or older checkpoints)."""
    return float((ckpt.get("calibration") or {}).get("temperature", 1.0))


def model_from_checkpoint(ckpt: dict, source: str = "checkpoint") -> ECGNet:
    """Rebuild the model from the checkpoint's own hyper-parameters and load its weights."""
    try:
        model = ECGNet(**ckpt["model_args"])
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise EcgnetError(f"{source}: weights do not match the ECGNet architecture ({str(e).splitlines()[0][:160]})") from None
    return model


def load_trunk(model: ECGNet, ckpt: dict, source: str) -> None:
    """Copy the conv trunk of a pretrained MIT-BIH checkpoint into ``model``."""
    if ckpt.get("task") != "mitbih":
        raise EcgnetError(f"pretrained checkpoint {source} is a '{ckpt.get('task')}' model, not an MIT-BIH trunk; pass a checkpoint trained with task 'mitbih'")
    theirs = ckpt.get("model_args", {})
    for key in ("channels", "n_blocks"):
        if theirs.get(key) != model.model_args[key]:
            raise EcgnetError(f"pretrained checkpoint {source} has {key}={theirs.get(key)}, this model has {model.model_args[key]}; the architectures do not match")
    trunk = {k: v for k, v in ckpt["model"].items() if k.startswith(TRUNK_PREFIXES)}
    expected = {k for k in model.state_dict() if k.startswith(TRUNK_PREFIXES)}
    if set(trunk) != expected or any(trunk[k].shape != model.state_dict()[k].shape for k in trunk):
        raise EcgnetError(f"pretrained checkpoint {source}: its trunk weights do not match the ECGNet trunk")
    model.load_state_dict(trunk, strict=False)
