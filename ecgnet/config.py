"""Training configuration: every key documented, validated, overridable from the CLI."""
from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .constants import DEVICES, TASKS
from .errors import EcgnetError
from .models import is_assembled, list_models

MODES = ("scratch", "frozen", "finetune")
IMBALANCE = ("none", "class_weights", "sqrt_class_weights", "balanced_sampling")
SPLIT_BY = ("beats", "patients")


def _key(default: Any, help: str) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class Config:
    """All keys of config/*.json. ``config/README.md`` is generated from these help texts."""

    task: str = _key("mitbih", "Dataset/task: 'mitbih' (5 classes N,S,V,F,Q) or 'ptbdb' (normal vs myocardial infarction).")
    model: str = _key("kachuee", "Registered model (ecgnet.models.registry): 'kachuee' (the paper's net), 'kachuee_rr' (the same trunk with the beat's rhythm features in the head; needs data from 'ecgnet prepare mitdb', the Kaggle CSVs carry no rhythm), 'kachuee_rrt' (kachuee_rr that also compares each beat with its record's median beat; the same data), 'cnn_lstm' (two convolutions + LSTM), 'gru' (a recurrent baseline) or 'cnn_bilstm_attn' (conv blocks + BiLSTM + attention pooling); docs/models.md compares them.")
    data_dir: str = _key("data", "Folder with the Kaggle CSVs (.csv, .csv.gz or .csv.xz). If they are missing, a small bundled subset is used and a message says so.")
    store: str = _key("", "Train from a sharded beat store written by 'ecgnet store' (its train/ shards read with bounded memory, its val/ beats for validation, its split and test set) instead of the resident training split; empty = resident data from data_dir. docs/distributed.md.")
    shuffle_buffer: int = _key(262144, "With a store: beats per shuffle window (whole shards, at least one): each window is read, permuted and cut into batches; memory holds one window.")
    save_every_steps: int = _key(0, "With a store: also write last.pt every this many steps, so a killed run resumes mid-epoch; 0 = at the end of each epoch only.")
    log_dir: str = _key("log", "Parent folder of the run directories (TensorBoard events, config, checkpoints).")
    run_name: str = _key("", "Run directory name under log_dir; empty = '<task>-<mode>-<date>-<time>'.")
    epochs: int = _key(60, "Maximum number of epochs (early stopping may end sooner).")
    batch_size: int = _key(128, "Training mini-batch size.")
    lr: float = _key(0.001, "Adam learning rate (paper: 0.001).")
    betas: list = _key([0.9, 0.999], "Adam beta1, beta2 (paper: 0.9, 0.999).")
    weight_decay: float = _key(0.0, "Adam weight decay (L2).")
    lr_decay: float = _key(0.75, "Learning-rate decay factor (paper: x0.75) ...")
    lr_decay_every: int = _key(10000, "... applied every this many iterations (paper: 10,000).")
    val_fraction: float = _key(0.1, "Share of the training file held out for validation (early stopping, best checkpoint).")
    split_by: str = _key("beats", "How validation (and for ptbdb the test split) is held out: 'beats' (stratified by class) or 'patients' (whole patients, with the task's key classes, S and V or normal and MI, on both sides; for figures on unseen patients; needs the *_index.csv that 'ecgnet prepare' writes).")
    test_fraction: float = _key(0.2, "ptbdb only: stratified share held out as the test split (the Kaggle PTB files ship no split).")
    ema_decay: float = _key(0.999, "Validation, best.pt, test and prediction use an exponential moving average of the weights, updated every step with this decay (warmed up as min(decay, (1+n)/(10+n)) after n steps); 0 = use the raw training weights.")
    patience: int = _key(20, "Early stopping: epochs without a better validation macro-F1 before stopping; 0 = never stop early. Longer than the 16 epochs between learning-rate decays at batch 128, so each decay gets its chance.")
    imbalance: str = _key("none", "Class-imbalance handling: 'none', 'class_weights' (inverse-frequency loss weights), 'sqrt_class_weights' (their square root: half way on a log scale) or 'balanced_sampling'.")
    class_weight_cap: float = _key(0.0, "With 'class_weights' or 'sqrt_class_weights': no class weighs more than this many times the most frequent class (0 = no cap). A class of a few beats from one or two patients (MIT-BIH DS1's F and Q) otherwise outweighs all the normal beats.")
    focal_gamma: float = _key(0.0, "Focal loss (Lin et al. 2017): each beat's cross-entropy is scaled by (1 - p_true) ** focal_gamma, so that beats already classified well weigh less (2 is the usual value); combines with the class weights of 'imbalance'. 0 = plain cross-entropy.")
    folds: int = _key(0, "0: one run, validated on val_fraction of the training file. K >= 2: K runs, each validated on its own K-th of the patients (needs the records 'ecgnet prepare' writes; resident data), saved as <run>/fold<F> and combined into <run>/best.pt, the mean of their probabilities (ecgnet.training.crossval).")
    linear_expert: bool = _key(False, "With folds K (rhythm models on prepared mitdb data): also fit the linear rhythm model (linear_rr: class-balanced logistic regression on the rhythm inputs and the beat every 9th sample, ecgnet.models.linear) on the training beats (not the detections that match no annotated beat, which prepare --unmatched q labels Q) and save best.pt as the folds' ensemble pooled with it (the product of their probabilities, ecgnet.models.combined); the ensemble alone is kept as ensemble.pt.")
    teacher: str = _key("", "Knowledge distillation (ecgnet.training.distill): a trained model (shipped name or checkpoint) whose networks' probabilities this one model learns instead of the labels, e.g. the five networks of 'mitbih-rr-ensemble' in one (the shipped 'mitbih-rr'); its validation patients are held out as val_fraction says, and with linear_expert the student is pooled with the linear rhythm model as folds' ensembles are. Needs resident data cut by the teacher's recipe; empty = learn the labels.")
    augment: bool = _key(True, "Paper's augmentation: random amplitude scaling and time stretching of minority-class beats.")
    seed: int = _key(0, "Seed for the split, initialisation, batch order and augmentation.")
    device: str = _key("auto", "'auto' (cuda, then mps, then cpu), 'cpu', 'cuda' or 'mps'.")
    amp: bool = _key(True, "Mixed precision (bfloat16 autocast) on CUDA; ignored on CPU.")
    cpu_fast_paths: bool = _key(True, "On CPU, train the 'kachuee' models through ecgnet.models.fastpath (channels-last 2-D convolutions, a GEMM weight gradient): the same arithmetic as the plain nn.Conv1d model, faster (docs/benchmarks.md); false = the plain model.")
    num_threads: int = _key(0, "CPU threads for PyTorch; 0 = number of physical cores.")
    eval_batch_size: int = _key(1024, "Batch size for validation/test/prediction.")
    pretrained: str = _key("", "Transfer: the MIT-BIH model whose conv trunk is reused (modes 'frozen' and 'finetune'): a shipped model name such as 'mitbih' or a checkpoint path.")
    mode: str = _key("scratch", "'scratch' (random init), 'frozen' (pretrained trunk frozen, new head trained; the paper) or 'finetune' (pretrained trunk trained too).")
    trunk_lr_scale: float = _key(0.1, "finetune: learning rate of the trunk relative to lr.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self, source: str = "config") -> "Config":
        """Check types and values; raise EcgnetError naming the offending key."""
        def bad(key: str, why: str) -> EcgnetError:
            return EcgnetError(f"{source}: key '{key}' {why}")

        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            want = type(f.default) if f.default is not dataclasses.MISSING else list
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                setattr(self, f.name, value)
            if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
                raise bad(f.name, f"must be of type {want.__name__}, got {value!r}")
        if is_assembled(self.model):
            raise bad("model", f"'{self.model}' is not trained by itself: train one model with --folds K (ecgnet train) to get "
                               "the ensemble of its K folds, with linear_expert=true also pooled with the linear model (linear_rr)")
        choices = {"task": tuple(TASKS), "model": tuple(list_models()), "mode": MODES, "device": DEVICES, "imbalance": IMBALANCE,
                   "split_by": SPLIT_BY}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise bad(key, f"is {getattr(self, key)!r}; choose one of {', '.join(allowed)}")
        for key in ("epochs", "batch_size", "lr_decay_every", "eval_batch_size"):
            if getattr(self, key) < 1:
                raise bad(key, f"must be >= 1, got {getattr(self, key)}")
        if self.shuffle_buffer < 1:
            raise bad("shuffle_buffer", f"must be >= 1, got {self.shuffle_buffer}")
        if self.save_every_steps and not self.store:
            raise bad("save_every_steps", "needs a store: a run on resident data saves at the end of each epoch; set 'store' or 0")
        for key in ("patience", "num_threads", "seed", "save_every_steps"):
            if getattr(self, key) < 0:
                raise bad(key, f"must be >= 0, got {getattr(self, key)}")
        if self.lr <= 0:
            raise bad("lr", f"must be > 0, got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise bad("lr_decay", f"must be in (0, 1], got {self.lr_decay}")
        if self.weight_decay < 0:
            raise bad("weight_decay", f"must be >= 0, got {self.weight_decay}")
        if self.class_weight_cap != 0 and self.class_weight_cap < 1:
            raise bad("class_weight_cap", f"must be 0 (no cap) or >= 1, got {self.class_weight_cap}")
        if not 0 <= self.focal_gamma <= 10:
            raise bad("focal_gamma", f"must be in [0, 10] (0 = plain cross-entropy, 2 is usual), got {self.focal_gamma}")
        if not 0 <= self.ema_decay < 1:
            raise bad("ema_decay", f"must be in [0, 1), got {self.ema_decay}")
        if self.trunk_lr_scale <= 0:
            raise bad("trunk_lr_scale", f"must be > 0, got {self.trunk_lr_scale}")
        if len(self.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas):
            raise bad("betas", f"must be two numbers in [0, 1), got {self.betas!r}")
        for key in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, key) < 1:
                raise bad(key, f"must be between 0 and 1 (exclusive), got {getattr(self, key)}")
        if self.mode != "scratch" and not self.pretrained:
            raise bad("pretrained", f"is empty but mode is '{self.mode}'; give the MIT-BIH model (--pretrained mitbih, or a checkpoint path) or use mode 'scratch'")
        if self.mode != "scratch" and self.task != "ptbdb":
            raise bad("mode", f"'{self.mode}' is for transfer to task 'ptbdb', but task is '{self.task}'")
        self._check_folds(bad)
        return self

    def _check_folds(self, bad) -> None:
        if self.folds == 1 or self.folds < 0:
            raise bad("folds", f"must be 0 (one run) or K >= 2 (K folds of patients, --folds K), got {self.folds}")
        if self.folds and self.store:
            raise bad("folds", "trains on resident data (data_dir), not on a store; unset 'store'")
        if self.teacher and (self.folds or self.store or self.focal_gamma):
            raise bad("teacher", "trains one model on resident data by plain cross-entropy with the teacher's probabilities; "
                                 "set folds 0, store '' and focal_gamma 0, or teacher ''")
        if self.linear_expert and not (self.folds or self.teacher):
            raise bad("linear_expert", "pools the ensemble of cross-validation folds with the linear model: set folds (--folds K), "
                                       "or teacher for one distilled model")


KEYS = tuple(f.name for f in dataclasses.fields(Config))


def _unknown_key(key: str, source: str) -> EcgnetError:
    close = difflib.get_close_matches(key, KEYS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(KEYS)}"
    return EcgnetError(f"{source}: unknown key '{key}'{hint}")


def config_from_dict(values: dict, source: str = "config", base: Config | None = None) -> Config:
    """Build a validated Config from ``values`` on top of ``base`` (defaults if None)."""
    for key in values:
        if key not in KEYS:
            raise _unknown_key(key, source)
    merged = (base or Config()).to_dict() | dict(values)
    return Config(**merged).validate(source)


def load_config(path: str | Path) -> Config:
    """Read and validate a JSON config file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise EcgnetError(f"config file {path} not found; pass an existing file with --config (e.g. config/config.json)") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise EcgnetError(f"config file {path} cannot be read ({e.__class__.__name__}); pass a JSON file with --config") from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as e:
        raise EcgnetError(f"config file {path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    if not isinstance(values, dict):
        raise EcgnetError(f"config file {path}: expected a JSON object of keys, got {type(values).__name__}")
    return config_from_dict(values, source=f"config file {path}")


def parse_override(text: str) -> tuple[str, Any]:
    """'key=value' from ``--set``; the value is JSON if it parses, else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise EcgnetError(f"--set {text!r}: expected KEY=VALUE, e.g. --set patience=5")
    if key not in KEYS:
        raise _unknown_key(key, "--set")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def config_markdown() -> str:
    """The key reference table of config/README.md."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Config):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append(f"| `{f.name}` | `{json.dumps(default)}` | {f.metadata['help']} |")
    return "\n".join(rows) + "\n"


CONFIG_README_HEADER = """# Configuration

`ecgnet train --config FILE` (or `python train.py --config FILE`) reads a JSON object of the keys below; any key left out takes its default.
An unknown key, a wrong type or an impossible value stops training with an error naming the key.
Common keys have their own flags (`--epochs`, `--batch-size`, `--lr`, `--seed`, `--run-name`, `--device`,
`--data-dir`, `--task`, `--mode`, `--pretrained`, `--log-dir`, `--imbalance`); any key can be set with
`--set KEY=VALUE` (the value is read as JSON when it parses, e.g. `--set augment=false`).

Files here: `config.json` (MIT-BIH, the defaults), `ptbdb_transfer.json` (PTB transfer learning),
`interpatient.json` (the rhythm-aware model for new patients, on `ecgnet prepare mitdb --split interpatient
--before-r 0.25 --positions gqrs --unmatched q` data in data/ds-wide-gqrs) and `interpatient_student.json` (one
network distilled from that model's five, `teacher`, on the same data).
This table is generated from `ecgnet/config.py`: `python -m ecgnet.config > config/README.md`.

"""

if __name__ == "__main__":
    print(CONFIG_README_HEADER + config_markdown(), end="")
