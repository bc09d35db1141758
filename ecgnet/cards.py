"""Model cards: the JSON beside each model file (its task, classes, recipe, figures and the SHA-256 of its weights and
ONNX graph), and the folder of the models shipped with the package. Torch-free: the ONNX Runtime path reads them too.
"""
from __future__ import annotations

import json
from pathlib import Path

from .checksums import sha256_file
from .constants import MODEL_FILE_SUFFIX, ONNX_SUFFIX
from .errors import EcgnetError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MODEL_FILE_KIND = "ecgnet-model"


def read_card(path: str | Path) -> dict:
    """The JSON card of a model file (``NAME.json`` beside ``NAME.safetensors``)."""
    path = Path(path).with_suffix(".json")
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise EcgnetError(f"model file {path.with_suffix(MODEL_FILE_SUFFIX)}: its card {path.name} is missing; "
                          "a model file is NAME.safetensors with NAME.json beside it (written by 'ecgnet export --safetensors')") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EcgnetError(f"model card {path} is unreadable ({e.__class__.__name__}); re-export the model or reinstall ecgnet") from None
    if not isinstance(card, dict) or card.get("kind") != MODEL_FILE_KIND:
        raise EcgnetError(f"{path} is not an ecgnet model card (no '{MODEL_FILE_KIND}' marker)")
    return card


def shipped_models() -> dict[str, dict]:
    """The models shipped with the package: name -> card, in name order."""
    return {p.stem: read_card(p) for p in sorted(WEIGHTS_DIR.glob("*.json"))}


def shipped_names() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.json"))


def shipped_onnx(name: str) -> Path | None:
    """The ONNX graph shipped beside shipped model ``name`` (checked against its card's SHA-256), or None if it has none."""
    path = (WEIGHTS_DIR / name).with_suffix(ONNX_SUFFIX)
    card = read_card(WEIGHTS_DIR / name)
    if not path.is_file() or "onnx_sha256" not in card:
        return None
    if sha256_file(path) != card["onnx_sha256"]:
        raise EcgnetError(f"shipped model {name}: {path.name} is corrupt (its SHA-256 does not match {name}.json); "
                          "reinstall ecgnet, or run with --backend torch")
    return path
