"""ecgnet: Kachuee et al. (2018) ECG heartbeat classification in PyTorch."""
__version__ = "0.1.0"
