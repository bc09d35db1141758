"""ecgnet: ECG heartbeat classification (Kachuee, Fazeli & Sarrafzadeh 2018) in PyTorch.

The public API::

    import ecgnet
    cfg = ecgnet.Config(epochs=2)                      # every key: config/README.md
    summary = ecgnet.train(cfg)                        # writes log/<run>/best.pt
    metrics = ecgnet.evaluate(summary["run_dir"] / "best.pt")
    predictor = ecgnet.Predictor.from_checkpoint(summary["run_dir"] / "best.pt")  # or a shipped model: "mitbih"
    beats, labels = ecgnet.read_beats_file("samples/mitbih_beats.csv")
    predictor.predict(beats)                           # class names, e.g. array(['N', 'S', ...])
"""
__version__ = "0.3.0"

# Names are imported on first use (PEP 562), so that ``import ecgnet`` stays light and the
# ONNX Runtime path (ecgnet.serving.onnx_backend, ecgnet.serving.labelling) never imports torch.
_EXPORTS = {
    "data.beatfiles": ("read_beats", "read_beats_file", "write_beats_csv"),
    "models.checkpoint": ("load_checkpoint", "model_from_checkpoint"),
    "config": ("Config", "config_from_dict", "load_config"),
    "constants": ("BEAT_LENGTH", "SAMPLE_RATE", "TASKS"),
    "errors": ("EcgnetError",),
    "serving.scoring": ("evaluate",),
    "serving.inference": ("Predictor",),
    "serving.labelling": ("label_record", "label_beat_files"),
    "models.model": ("ECGNet", "BeatClassifier"),
    "models.registry": ("create_model", "list_models"),
    "models.pretrained": ("shipped_models",),
    "data.prepare": ("prepare",),
    "signals.preprocess": ("cut_detected_beats", "detect_r_peaks"),
    "signals.records": ("Recording", "read_recording"),
    "training.runs": ("train",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'ecgnet' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
