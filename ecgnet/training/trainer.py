"""The training loop: model, optimiser, weight averaging, epochs, validation, checkpoints.

Reads top to bottom: ``train`` sets a run up, then each epoch trains on batches from its
source (the resident training tensors or a sharded store, ``ecgnet.training.sources``), validates,
logs and saves last.pt (and best.pt on a better validation macro-F1) until the epoch limit
or early stopping.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from ..config import Config
from ..constants import TASKS
from ..data.datasets import Splits
from ..errors import TrainingInterrupted
from ..models.checkpoint import load_checkpoint, load_trunk, new_checkpoint, save_checkpoint
from ..models.fastpath import CPUForward, uses_cpu_fast_path
from ..models.model import BeatClassifier, count_parameters, freeze_trunk
from ..models.pretrained import resolve_checkpoint
from ..models.registry import create_model
from ..runtime import autocast, select_device, sigterm_as_interrupt
from .distributed import World, world_from_env
from .evaluation import calibrate, evaluate_model, model_splits
from .loss import BeatLoss, training_loss
from .optimization import make_optimizer, weight_average
from .reporting import TensorBoardLogger, log_epoch_line, shared_run_dir
from .sources import ResidentSource, StoreSource, training_source, training_splits

log = logging.getLogger(__name__)
LONG_EPOCH_STEPS = 10_000  # epochs this long report progress in the log when no progress bar is shown


@dataclass
class TrainState:
    """Everything besides the weights that a resumed run needs to continue exactly."""
    epoch: int = 0            # epochs completed
    step: int = 0             # optimiser steps taken
    epoch_step: int = 0       # steps taken in the epoch under way (mid-epoch checkpoints of a store run)
    best_val_macro_f1: float = -1.0
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    train_seconds: float = 0.0


def build_model(cfg: Config, n_classes: int, device: torch.device) -> tuple[BeatClassifier, dict | None]:
    """A fresh model for ``cfg``; for transfer modes, with the pretrained MIT-BIH trunk loaded (and frozen)."""
    model = create_model(cfg.model, n_classes)
    source = None
    if cfg.mode != "scratch":
        pretrained = resolve_checkpoint(cfg.pretrained)
        load_trunk(model, pretrained, cfg.pretrained)
        source = {"path": str(cfg.pretrained), "task": pretrained["task"], "epoch": pretrained.get("epoch"),
                  "val_metrics": {k: pretrained.get("val_metrics", {}).get(k) for k in ("accuracy", "macro_f1")}}
        if cfg.mode == "frozen":
            freeze_trunk(model)
    return model.to(device), source


@dataclass
class TrainingRun:
    """The objects of one run that change as it trains, and the checkpoint they make."""
    cfg: Config
    model: BeatClassifier
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ema: AveragedModel | None
    generator: torch.Generator
    pretrained: dict | None
    state: TrainState = field(default_factory=TrainState)
    history: list[dict] = field(default_factory=list)
    world: World = field(default_factory=World)  # the torchrun job (a world of one for a plain run)
    last_val: dict = field(default_factory=dict)  # the latest validation metrics, saved with each checkpoint

    @property
    def evaluated(self) -> BeatClassifier:
        """The weights validated, saved as "model" and used for prediction."""
        return self.model if self.ema is None else self.ema.module

    @classmethod
    def create(cls, cfg: Config, device: torch.device, resume: dict | None = None) -> "TrainingRun":
        torch.manual_seed(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed)  # batch order + augmentation; saved for exact resume
        model, pretrained = build_model(cfg, TASKS[cfg.task].n_classes, device)
        optimizer = make_optimizer(model, cfg)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_decay_every, gamma=cfg.lr_decay)
        run = cls(cfg, model, optimizer, scheduler, weight_average(model, cfg.ema_decay), generator, pretrained)
        if resume is not None:
            run.restore(resume)
        return run

    def restore(self, ckpt: dict) -> None:
        """Continue from a last.pt: weights, optimiser, schedule, random state, history."""
        # "model" holds the evaluated weights; with averaging, the raw ones are "train_model".
        self.model.load_state_dict(ckpt.get("train_model") or ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.generator.set_state(ckpt["generator"])
        self.state = TrainState(**ckpt["train_state"])
        self.history = list(ckpt["history"])
        self.pretrained = ckpt.get("pretrained")
        self.last_val = ckpt.get("val_metrics") or {}
        if self.ema is not None:
            self.ema.module.load_state_dict(ckpt["model"])
            self.ema.n_averaged.fill_(self.state.step)  # one update per step

    def checkpoint(self, val_metrics: dict, splits: Splits) -> dict:
        def weights(m: BeatClassifier) -> dict:
            return {k: v.detach().cpu() for k, v in m.state_dict().items()}

        cfg, task = self.cfg, TASKS[self.cfg.task]
        split = splits.split or {"seed": cfg.seed, "val_fraction": cfg.val_fraction, "split_by": cfg.split_by, "test_fraction": cfg.test_fraction}
        return new_checkpoint(
            cfg.task, task.class_names, cfg.model, self.model.model_args, weights(self.evaluated), cfg.to_dict(), splits.recipe,
            {"data_dir": str(splits.data_dir), "seed": split["seed"], "val_fraction": split["val_fraction"],
             "split_by": split["split_by"], "test_fraction": split["test_fraction"], "store": cfg.store or None,
             "val_records": sorted(set(splits.val.records.tolist())) if split["split_by"] == "patients" else None,
             "n_train": len(splits.train), "n_val": len(splits.val),
             "test_indices": None if splits.test_indices is None else splits.test_indices.tolist()},
            epoch=self.state.epoch, step=self.state.step, train_model=None if self.ema is None else weights(self.model),
            val_metrics=val_metrics, pretrained=self.pretrained, optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(), generator=self.generator.get_state(), train_state=vars(self.state).copy(),
            history=self.history)


def train_one_epoch(run: TrainingRun, source: ResidentSource | StoreSource, loss_fn: BeatLoss = BeatLoss(),
                    desc: str = "train", on_step: Callable[[], None] | None = None) -> dict:
    """One epoch (or the rest of one, after a mid-epoch resume) over ``source``'s batches.

    The weight average is updated after every step and ``on_step`` called (mid-epoch
    checkpoints). Returns loss, accuracy, steps and beats of the steps taken here.
    """
    cfg, model, world, state = run.cfg, run.model, run.world, run.state
    device = next(model.parameters()).device
    forward = CPUForward(model) if cfg.cpu_fast_paths and device.type == "cpu" and uses_cpu_fast_path(model) else model
    if world.distributed:
        forward = DistributedDataParallel(forward)  # gradients averaged over the ranks' batches
    model.train()
    first = state.epoch_step
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    total = source.steps(state.epoch)
    bar = tqdm(source.batches(state.epoch, first), desc=desc, total=total, initial=first, leave=False,
               mininterval=1.0, disable=None if world.is_main else True, file=sys.stderr)
    # Without a terminal the bar is off: long epochs (a large store) log a line every tenth instead.
    tenth = total // 10 if bar.disable and world.is_main and total >= LONG_EPOCH_STEPS else 0
    start = time.perf_counter()
    for xb, yb, rb in bar:
        with autocast(device, cfg.amp):
            logits = forward(xb, rb)
        loss = loss_fn(logits.float(), yb)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.scheduler.step()
        if run.ema is not None:
            run.ema.update_parameters(model)
        state.step, state.epoch_step = state.step + 1, state.epoch_step + 1
        # Running sums stay on the device: no host sync per step on a GPU.
        loss_sum += loss.detach() * len(yb)
        correct += (logits.argmax(1) == (yb if yb.ndim == 1 else yb.argmax(1))).sum()  # a teacher's targets: its calls
        seen += len(yb)
        if state.epoch_step % 50 == 0:
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}")
        if tenth and state.epoch_step % tenth == 0:
            log.info("  %s: step %d/%d, train loss %.4f acc %.4f, %.0f beats/s", desc, state.epoch_step, total,
                     loss_sum.item() / seen, correct.item() / seen, seen / (time.perf_counter() - start))
        if on_step is not None:
            on_step()
    bar.close()
    totals = world.sum(torch.stack([loss_sum, correct.to(loss_sum.dtype), torch.tensor(float(seen), device=device)]))
    return {"loss": (totals[0] / totals[2]).item(), "accuracy": (totals[1] / totals[2]).item(), "steps": state.epoch_step - first,
            "beats": int(totals[2].item())}


def validate(run: TrainingRun, splits: Splits, stats: dict, epoch_seconds: float, loss_fn: BeatLoss) -> tuple[dict, dict]:
    """Validation metrics of the evaluated weights and the epoch's history record."""
    cfg, device = run.cfg, next(run.model.parameters()).device
    val = evaluate_model(run.evaluated, splits.val, cfg.eval_batch_size, device, cfg.amp, loss_fn)
    record = {"epoch": run.state.epoch, "step": run.state.step, "train_loss": stats["loss"], "train_accuracy": stats["accuracy"],
              "val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
              "lr": run.optimizer.param_groups[0]["lr"], "epoch_seconds": epoch_seconds, "beats_per_second": stats["beats"] / epoch_seconds}
    if run.ema is not None:  # the raw weights' score, to show what averaging adds
        raw = evaluate_model(run.model, splits.val, cfg.eval_batch_size, device, cfg.amp, loss_fn)
        record.update(val_raw_accuracy=raw["accuracy"], val_raw_macro_f1=raw["macro_f1"])
    return val, record


def train(cfg: Config, splits: Splits | None = None, run_dir: str | Path | None = None, resume: dict | None = None,
          on_epoch_end: Callable[[BeatClassifier, dict, BeatClassifier], None] | None = None, overwrite: bool = False) -> dict:
    """Train ``cfg`` and return a summary (best epoch and score, epochs, seconds, history, run_dir).

    ``splits`` default to the task's files in ``cfg.data_dir``; ``run_dir`` to a fresh
    log_dir/run_name, made once the inputs are checked (``overwrite`` to reuse one). Writes TensorBoard events, last.pt every epoch and best.pt on each
    better validation macro-F1; selection and early stopping use validation only, on the
    evaluated weights; at the end best.pt gets its calibration temperature, fitted on the
    validation split (``ecgnet.training.calibration``). ``resume`` is a last.pt checkpoint to continue from.
    ``on_epoch_end(evaluated_model, record, raw_model)`` observes (benchmarks); it must not steer.
    Ctrl-C or SIGTERM ends with ``TrainingInterrupted`` after the last completed epoch was saved.
    """
    splits = splits or training_splits(cfg)
    device = select_device(cfg.device)
    run = TrainingRun.create(cfg, device, resume)
    run.world = world_from_env(device)
    splits = model_splits(run.model, splits, cfg.store)
    run_dir = shared_run_dir(cfg, run.world, run_dir, overwrite)
    source = training_source(splits.train, cfg, device, run.world, run.generator, bool(run.model.rhythm_dim))
    loss_fn = training_loss(splits, cfg, device)
    log.info("%s (%s): %d train / %d val beats from %s, %s trainable parameters, device %s, %d threads -> %s",
             cfg.task, cfg.mode, len(splits.train), len(splits.val), splits.data_dir,
             f"{count_parameters(run.model, trainable_only=True):,}", device, torch.get_num_threads(), run_dir)
    # Scalars are logged per epoch, before last.pt is saved: on resume drop any logged past it.
    board = TensorBoardLogger(run_dir, purge_step=run.state.epoch + 1 if resume else None) if run.world.is_main else None
    state = run.state
    try:
        with sigterm_as_interrupt():
            while state.epoch < cfg.epochs and not (cfg.patience and state.epochs_without_improvement >= cfg.patience):
                start = time.perf_counter()
                stats = train_one_epoch(run, source, loss_fn, f"epoch {state.epoch + 1}/{cfg.epochs}",
                                        mid_epoch_saver(run, run_dir, splits))
                seconds = time.perf_counter() - start
                state.epoch, state.epoch_step, state.train_seconds = state.epoch + 1, 0, state.train_seconds + seconds
                val, record = validate(run, splits, stats, seconds, loss_fn)
                run.last_val = val
                improved = val["macro_f1"] > state.best_val_macro_f1
                if improved:
                    state.best_val_macro_f1, state.best_epoch, state.epochs_without_improvement = val["macro_f1"], state.epoch, 0
                else:
                    state.epochs_without_improvement += 1
                run.history.append(record)
                save_epoch(run, run_dir, board, run.checkpoint(val, splits), record, val, improved)
                if on_epoch_end is not None:
                    on_epoch_end(run.evaluated, record, run.model)
    except KeyboardInterrupt:
        if board is not None:
            board.close()
        raise TrainingInterrupted(run_dir, state.epoch) from None
    return finish(run, run_dir, board, splits)


def mid_epoch_saver(run: TrainingRun, run_dir: Path, splits: Splits) -> Callable[[], None] | None:
    """With ``save_every_steps``: a step hook writing last.pt every that many steps (store runs resume mid-epoch)."""
    every = run.cfg.save_every_steps
    if not every:
        return None

    def save() -> None:
        if run.state.epoch_step % every == 0:
            if run.world.is_main:
                save_checkpoint(run_dir / "last.pt", run.checkpoint(run.last_val, splits))
            run.world.barrier()
    return save


def save_epoch(run: TrainingRun, run_dir: Path, board: TensorBoardLogger | None, ckpt: dict, record: dict, val: dict,
               improved: bool) -> None:
    """Rank 0 logs the epoch and writes last.pt (and best.pt); every rank waits until the files are there."""
    if run.world.is_main:
        board.log_epoch(record, val)
        if improved:
            save_checkpoint(run_dir / "best.pt", ckpt)
        save_checkpoint(run_dir / "last.pt", ckpt)
        log_epoch_line(run.cfg, record, improved)
    run.world.barrier()


def finish(run: TrainingRun, run_dir: Path, board: TensorBoardLogger | None, splits: Splits) -> dict:
    """Calibrate best.pt on the validation split, log the run's hyper-parameters with its best scores; the summary ``train`` returns."""
    state = run.state
    summary = {"best_epoch": state.best_epoch, "best_val_macro_f1": state.best_val_macro_f1, "epochs": state.epoch,
               "train_seconds": state.train_seconds, "history": run.history, "run_dir": run_dir}
    if not run.world.is_main:
        run.world.barrier()  # until rank 0 has calibrated best.pt
        return summary
    best = load_checkpoint(run_dir / "best.pt")
    best["calibration"] = calibrate(best, splits.val, next(run.model.parameters()).device, run.cfg.eval_batch_size)
    save_checkpoint(run_dir / "best.pt", best)
    c = best["calibration"]
    log.info("calibration: temperature %.3f fitted on the validation split, ECE (%d bins) %.4f -> %.4f",
             c["temperature"], c["bins"], c["val_ece_uncalibrated"], c["val_ece"])
    board.log_hparams(run.cfg, {"best_val_macro_f1": state.best_val_macro_f1, "best_val_accuracy": best["val_metrics"]["accuracy"],
                                "best_epoch": state.best_epoch, "train_seconds": state.train_seconds})
    board.close()
    stop = "early stop" if state.epoch < run.cfg.epochs else "epoch limit"
    log.info("done (%s) after %d epochs, %.0f s of training; best val macro-F1 %.4f at epoch %d -> %s",
             stop, state.epoch, state.train_seconds, state.best_val_macro_f1, state.best_epoch, run_dir / "best.pt")
    run.world.barrier()
    return summary
