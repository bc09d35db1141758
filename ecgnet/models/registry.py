"""The model registry (timm-like): ``@register_model``, ``create_model(name, n_classes, **kwargs)``, ``list_models()``.

A model class registers itself under one or more names, each with the arguments that make it that model;
the registry imports no model. Importing ``ecgnet.models`` imports every model module, so every name is
registered before any is looked up. A checkpoint stores the name and the full ``model_args``, so
``model_class(name)(**model_args)`` rebuilds it. Assembled models (combined from trained checkpoints, or
fitted in closed form) are registered too, but a config cannot train them. ``bench/models.py`` compares
the trainable ones on one split.
"""
from __future__ import annotations

from typing import Callable, TypeVar

Model = TypeVar("Model", bound=type)

KINDS = ("beat", "assembled", "record")  # beat classifiers a config trains; assembled ones; record-level classifiers
_REGISTRY: dict[str, tuple[type, dict, str]] = {}  # name -> (class, its default arguments, kind)


def register_model(name: str, *, assembled: bool = False, record: bool = False, **defaults) -> Callable[[Model], Model]:
    """Class decorator: ``name`` builds the class with ``defaults``; ``assembled`` models (made from trained checkpoints
    or fitted in closed form) and ``record`` models (a whole recording -> one verdict) are not trained by a beat config."""
    def add(cls: Model) -> Model:
        if name in _REGISTRY and _REGISTRY[name][0] is not cls:
            raise ValueError(f"model name {name!r} is registered twice ({_REGISTRY[name][0].__name__}, {cls.__name__})")
        _REGISTRY[name] = (cls, defaults, "record" if record else "assembled" if assembled else "beat")
        return cls
    return add


def list_models(kind: str = "beat") -> list[str]:
    """The models of ``kind``; by default the beat classifiers a config can train."""
    return [name for name, (_, _, k) in _REGISTRY.items() if k == kind]


def is_assembled(name: str) -> bool:
    """Whether ``name`` is made from trained checkpoints or fitted in closed form, not trained by a config."""
    return name in _REGISTRY and _REGISTRY[name][2] == "assembled"


def is_record_model(name: str) -> bool:
    """Whether ``name`` judges a whole recording (``ecgnet.models.record``) rather than each beat."""
    return name in _REGISTRY and _REGISTRY[name][2] == "record"


def model_class(name: str) -> type:
    """The class of a registered model name (older checkpoints without a name hold 'kachuee')."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(_REGISTRY)}")
    return _REGISTRY[name][0]


def create_model(name: str, n_classes: int, **kwargs):
    """A registered model by name for ``n_classes`` classes; ``kwargs`` override its arguments."""
    return model_class(name)(n_classes=n_classes, **(_REGISTRY[name][1] | kwargs))
