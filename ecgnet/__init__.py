"""ecgnet: ECG heartbeat classification (Kachuee, Fazeli & Sarrafzadeh 2018) in PyTorch.

The public API::

    import ecgnet
    cfg = ecgnet.Config(epochs=2)                      # every key: config/README.md
    summary = ecgnet.train(cfg)                        # writes log/<run>/best.pt
    metrics = ecgnet.evaluate(summary["run_dir"] / "best.pt")
    predictor = ecgnet.Predictor.from_checkpoint(summary["run_dir"] / "best.pt")
    beats, labels = ecgnet.read_beats_file("samples/mitbih_beats.csv")
    predictor.predict(beats)                           # class names, e.g. array(['N', 'S', ...])
"""
__version__ = "0.2.0"

from .beatfiles import read_beats, read_beats_file, write_beats_csv  # noqa: E402
from .checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402
from .config import Config, config_from_dict, load_config  # noqa: E402
from .constants import BEAT_LENGTH, SAMPLE_RATE, TASKS  # noqa: E402
from .errors import EcgnetError  # noqa: E402
from .evaluation import evaluate  # noqa: E402
from .inference import Predictor, label_record  # noqa: E402
from .model import ECGNet  # noqa: E402
from .prepare import prepare  # noqa: E402
from .preprocess import cut_detected_beats, detect_r_peaks  # noqa: E402
from .records import Recording, read_recording  # noqa: E402
from .trainer import train  # noqa: E402

__all__ = [
    "BEAT_LENGTH", "SAMPLE_RATE", "TASKS",
    "Config", "config_from_dict", "load_config",
    "ECGNet", "load_checkpoint", "model_from_checkpoint",
    "train", "evaluate", "Predictor", "label_record",
    "read_beats", "read_beats_file", "write_beats_csv",
    "Recording", "read_recording", "detect_r_peaks", "cut_detected_beats", "prepare",
    "EcgnetError",
]
