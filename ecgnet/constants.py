"""Facts every layer shares: the beat format, the tasks and their classes, names of choices and file types."""
from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE = 125        # Hz of every beat, as in the paper and the Kaggle files
BEAT_LENGTH = 187        # samples per beat (1.5 s at 125 Hz)
WINDOW_SECONDS = 10      # the recipe cuts beats window by window

DEVICES = ("auto", "cpu", "cuda", "mps")
# R-peak detectors of ecgnet.signals.preprocess; the default is the fastest with pooled Se and +P >= 99.5% on mitdb (EC57).
DETECTORS = ("fused", "gqrs", "sleepecg", "xqrs", "paper", "nk-neurokit", "nk-pantompkins1985", "nk-hamilton2002", "nk-elgendi2010",
             "nk-engzeemod2012", "nk-kalidas2017", "nk-rodrigues2021")
DEFAULT_DETECTOR = DETECTORS[0]

BEAT_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.xz")
BEAT_FILE_SUFFIXES = BEAT_CSV_SUFFIXES + (".npy", ".mat")
SIGNAL_FILE_SUFFIXES = (".csv", ".npy")
EDF_SUFFIXES = (".edf", ".bdf")      # EDF / EDF+ / BDF recordings (lower-cased suffix)
WFDB_SUFFIXES = (".hea", ".dat", ".atr")
MODEL_FILE_SUFFIX = ".safetensors"   # weights of a model file; its card is NAME.json beside it
ONNX_SUFFIX = ".onnx"
ONNX_KIND = "ecgnet-onnx"           # marker in an exported ONNX file's metadata, under ONNX_METADATA_KEY
ONNX_METADATA_KEY = "ecgnet"

DEFAULT_MODEL = "mitbih"             # shipped model for beat files (ecgnet/weights/)
DEFAULT_RECORD_MODEL = "mitbih-rr"   # shipped model for whole recordings: rhythm-aware, trained on other patients
BACKENDS = ("auto", "torch", "onnxruntime")
UNCERTAIN = "uncertain"              # the verdict for beats below --min-confidence
CLASS_COLOURS = {"N": "#2ca02c", "S": "#ff7f0e", "V": "#d62728", "F": "#9467bd", "Q": "#7f7f7f",  # in every figure
                 "normal": "#2ca02c", "MI": "#d62728", UNCERTAIN: "#1f77b4"}
MAX_UPLOAD_MB = 200                  # the web page's upload limit (ecgnet app passes it to Streamlit)

DEFAULT_SHARD_BEATS = 65_536        # beats per shard of a beat store (ecgnet store): 49 MB of float32 beats

# The standard 12-lead ECG in its usual order: the record-level models read their leads in these slots.
STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
RHYTHM_LEAD = "II"                   # the lead whose R peaks place every lead's beats
MI_CLASSES = ("NORM", "MI")          # the record-level infarction task (PTB-XL): index 1 is MI

KAGGLE_URL = "https://www.kaggle.com/datasets/shayanfazeli/heartbeat"


@dataclass(frozen=True)
class Task:
    """A classification task: its class names and the Kaggle files it reads."""
    name: str
    class_names: tuple[str, ...]
    train_stems: tuple[str, ...]      # files the training split is drawn from
    test_stems: tuple[str, ...] = ()  # a separate test file; empty = test split drawn from train_stems
    holdout_classes: tuple[int, ...] = ()  # classes a patient-wise holdout must put on both sides

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


MITBIH = Task("mitbih", ("N", "S", "V", "F", "Q"), ("mitbih_train",), ("mitbih_test",), holdout_classes=(1, 2))
PTBDB = Task("ptbdb", ("normal", "MI"), ("ptbdb_normal", "ptbdb_abnormal"), holdout_classes=(0, 1))
TASKS = {t.name: t for t in (MITBIH, PTBDB)}
ECTOPIC = ("S", "V", "F")  # MIT-BIH classes counted as ectopic beats in record summaries
