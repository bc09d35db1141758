"""What a run writes: its directory and config, TensorBoard events, a line per epoch, and the test report."""
from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

from ..atomic import atomic_write, write_text
from ..config import Config
from ..errors import EcgnetError
from ..plots import confusion_figure, coverage_figure, reliability_figure, save_png
from .distributed import World

log = logging.getLogger(__name__)


def make_run_dir(cfg: Config, overwrite: bool = False) -> Path:
    """log_dir/run_name (default '<task>-<mode>-<date>-<time>'), created fresh with config.json.

    An existing run is never reused unless ``overwrite``; ``cfg.run_name`` is set to the name used.
    """
    cfg.run_name = cfg.run_name or f"{cfg.task}-{cfg.mode}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir = Path(cfg.log_dir) / cfg.run_name
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise EcgnetError(f"run directory {run_dir} already exists; choose another --run-name, continue it with --resume {run_dir}, or pass --overwrite")
        for f in run_dir.iterdir():
            if f.is_file():
                f.unlink()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    except OSError as e:
        raise EcgnetError(f"cannot create run directory {run_dir} ({e.strerror}); set log_dir to a writable folder") from None
    return run_dir


class TensorBoardLogger:
    """Per-epoch scalars, per-class F1 and confusion matrices of a run, and its hyper-parameters."""

    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(str(run_dir), purge_step=purge_step)

    def log_epoch(self, record: dict, val: dict) -> None:
        step, w = record["epoch"], self.writer
        for tag, key in (("loss/train", "train_loss"), ("loss/val", "val_loss"), ("accuracy/train", "train_accuracy"),
                         ("accuracy/val", "val_accuracy"), ("macro_f1/val", "val_macro_f1"),
                         ("accuracy/val_raw_weights", "val_raw_accuracy"), ("macro_f1/val_raw_weights", "val_raw_macro_f1"),
                         ("lr", "lr"), ("speed/beats_per_second", "beats_per_second")):
            if key in record:
                w.add_scalar(tag, record[key], step)
        self.log_metrics(val, "val", step, f"validation, epoch {step}")

    def log_metrics(self, metrics: dict, split: str, step: int, title: str) -> None:
        """Per-class F1 and the confusion matrix of ``split`` (and its headline scores for 'test')."""
        if split == "test":
            for key in ("accuracy", "macro_f1", "roc_auc"):
                if key in metrics:
                    self.writer.add_scalar(f"test/{key}", metrics[key], step)
        for name, c in metrics["per_class"].items():
            self.writer.add_scalar(f"f1_{split}/{name}", c["f1"], step)
        self.writer.add_figure(f"confusion_matrix/{split}", confusion_figure(metrics, title), step)

    def log_hparams(self, cfg: Config, results: dict) -> None:
        hparams = {k: (str(v) if isinstance(v, (list, type(None))) else v) for k, v in cfg.to_dict().items()}
        self.writer.add_hparams(hparams, {f"hparam/{k}": v for k, v in results.items()}, run_name=".")

    def close(self) -> None:
        self.writer.close()


def write_test_report(metrics: dict, out_dir: Path) -> list[Path]:
    """metrics.json, confusion_matrix.png, reliability.png and coverage.png in ``out_dir``, and the test scores in its TensorBoard."""
    out_dir = Path(out_dir)
    title = f"{metrics['task']} test: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
    paths = [out_dir / "metrics.json", out_dir / "confusion_matrix.png"]
    write_text(paths[0], json.dumps(metrics, indent=2) + "\n")
    figures = [(confusion_figure(metrics, title), paths[1])]
    if "calibration" in metrics:
        paths += [out_dir / "reliability.png", out_dir / "coverage.png"]
        figures += [(reliability_figure(metrics["calibration"], f"{metrics['task']} test: reliability"), paths[2]),
                    (coverage_figure(metrics["calibration"], f"{metrics['task']} test: coverage vs accuracy"), paths[3])]
    for fig, path in figures:
        with atomic_write(path) as f:
            save_png(fig, f)
    logger = TensorBoardLogger(out_dir)
    logger.log_metrics(metrics, "test", metrics["epoch"], title)
    logger.close()
    return paths


def shared_run_dir(cfg: Config, world: World, run_dir: str | Path | None, overwrite: bool) -> Path:
    """The run directory: made by rank 0 (``make_run_dir``), its name shared with every rank."""
    if run_dir is None:
        run_dir = make_run_dir(cfg, overwrite) if world.is_main else None
    run_dir = Path(world.broadcast(str(run_dir) if run_dir is not None else None))
    cfg.run_name = run_dir.name if world.distributed else cfg.run_name
    return run_dir


def log_epoch_line(cfg: Config, r: dict, improved: bool) -> None:
    log.info("epoch %3d/%d  train loss %.4f acc %.4f | val loss %.4f acc %.4f macro-F1 %.4f | lr %.2e | %.1f s (%.0f beats/s)%s",
             r["epoch"], cfg.epochs, r["train_loss"], r["train_accuracy"], r["val_loss"], r["val_accuracy"], r["val_macro_f1"],
             r["lr"], r["epoch_seconds"], r["beats_per_second"], "  * best" if improved else "")
