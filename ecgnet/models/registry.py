"""The model registry (timm-like): ``create_model(name, n_classes, **kwargs)``, ``list_models()``.

A name maps to a model class and the arguments that make it that model; a checkpoint
stores the name and the full ``model_args``, so ``model_class(name)(**model_args)``
rebuilds it. ``bench/models.py`` compares them on one split.
"""
from __future__ import annotations

from ..signals.rhythm import RHYTHM_INPUTS
from .baselines import CNNLSTM, CNNBiLSTMAttention, GRUNet
from .ensemble import ENSEMBLE, Ensemble
from .linear import LINEAR, RhythmLinear
from .model import BeatClassifier, ECGNet
from .pooling import POOLED, Pooled

MODELS: dict[str, tuple[type[BeatClassifier], dict]] = {
    "kachuee": (ECGNet, {}),                                       # the paper's net (Fig. 2), 55,013 parameters
    "kachuee_rr": (ECGNet, {"rhythm_dim": len(RHYTHM_INPUTS)}),   # the same trunk + rhythm features in the head
    "kachuee_rrt": (ECGNet, {"rhythm_dim": len(RHYTHM_INPUTS), "template": True}),  # + the beat's record template
    "cnn_lstm": (CNNLSTM, {}),                                     # two convolutions + LSTM
    "gru": (GRUNet, {}),                                           # a recurrent baseline
    "cnn_bilstm_attn": (CNNBiLSTMAttention, {}),                   # conv blocks + BiLSTM + attention pooling
}


# Not made by the trainer: checkpoints name them, configs cannot. An ensemble averages trained members and a
# pooled model multiplies trained experts (ecgnet.training.crossval); the linear model is fitted in closed form (ecgnet.models.linear).
ASSEMBLED: dict[str, type[BeatClassifier]] = {ENSEMBLE: Ensemble, POOLED: Pooled, LINEAR: RhythmLinear}


def list_models() -> list[str]:
    """The models a config can train."""
    return list(MODELS)


def model_class(name: str) -> type[BeatClassifier]:
    """The class of a registered or assembled model name (older checkpoints without a name hold 'kachuee')."""
    if name in ASSEMBLED:
        return ASSEMBLED[name]
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(MODELS)}")
    return MODELS[name][0]


def create_model(name: str, n_classes: int, **kwargs) -> BeatClassifier:
    """A registered model by name for ``n_classes`` classes; ``kwargs`` override its arguments."""
    return model_class(name)(n_classes=n_classes, **(MODELS[name][1] | kwargs))
