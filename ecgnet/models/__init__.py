"""The models: the paper's net and the other architectures, the linear rhythm model, combined models, the
registry, checkpoints and model files, and the CPU fast path.

Importing this package registers every model (``registry.register_model``), as timm does; the order of the
imports is the order ``list_models()`` gives.
"""
from . import model  # noqa: I001, F401  (each module registers its models)
from . import baselines, linear, combined, record  # noqa: F401
from .registry import create_model, is_assembled, is_record_model, list_models, model_class, register_model

__all__ = ["create_model", "is_assembled", "is_record_model", "list_models", "model_class", "register_model"]
