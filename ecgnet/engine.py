"""Training and evaluation: devices, checkpoints, batching, augmentation, the training loop.

Every fast path lives here: the whole training set stays one resident tensor (on
the GPU when there is one) and batches are gathered by index, never collated per
sample; evaluation runs in inference mode in large batches; CUDA uses bf16 autocast.
"""
from __future__ import annotations

import ctypes
import os
import platform
import signal
import sys
import tempfile
import time
import zipfile
import pickle
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from . import __version__
from .config import Config
from .data import TASKS, BeatDataset, Splits
from .errors import EcgnetError
from .metrics import classification_metrics, confusion_figure
from .model import BEAT_LENGTH, ECGNet, count_parameters, freeze_trunk

FORMAT_VERSION = 1
CHECKPOINT_KIND = "ecgnet-checkpoint"


# ---------------------------------------------------------------- device and threads

def physical_cores() -> int:
    """Physical cores available to this process (hyper-threads do not help these convs)."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        try:
            cores.add(Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def select_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda, then mps, then cpu; a named device that is absent is an error."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise EcgnetError("device 'cuda' requested but no CUDA GPU is available to PyTorch; use --device cpu or auto")
    if name == "mps" and not has_mps:
        raise EcgnetError("device 'mps' requested but Apple MPS is not available; use --device cpu or auto")
    return torch.device(name)


def keep_freed_memory() -> bool:
    """Let glibc's malloc reuse freed tensor memory instead of returning it to the kernel.

    By default glibc serves every block over a few MB with a fresh mmap and unmaps it on
    free, so each new activation or gradient (3 MB per conv layer at batch 128) is
    page-faulted in again, about 4,000 faults per training step. Keeping blocks up to
    32 MB (glibc's maximum) in the heap, and not trimming it, makes a training epoch
    about 1.2x faster on CPU (A/B of alternating processes, see README). Returns whether it applied
    (glibc only; elsewhere this is a no-op).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False


def setup_torch(num_threads: int = 0, device: str = "auto") -> torch.device:
    """Thread count, determinism on CPU, the device, and (on CPU) the allocator setting above."""
    torch.set_num_threads(num_threads or physical_cores())
    dev = select_device(device)
    if dev.type == "cpu":
        keep_freed_memory()
    # CPU kernels used here are deterministic for a fixed thread count; on CUDA some
    # backward kernels are not, so determinism is only promised on CPU (see README).
    torch.use_deterministic_algorithms(dev.type == "cpu", warn_only=True)
    # Deterministic mode also fills every new tensor with NaN to expose reads of
    # uninitialised memory: 3,600 fills per training step, about 4% of it. Every kernel
    # here writes its whole output, so the fill changes no result.
    torch.utils.deterministic.fill_uninitialized_memory = False
    return dev


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA (no loss scaling needed); a no-op elsewhere."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


# ---------------------------------------------------------------- checkpoints

def library_versions() -> dict:
    import sklearn
    return {"ecgnet": __version__, "torch": str(torch.__version__), "numpy": np.__version__,
            "sklearn": sklearn.__version__, "python": platform.python_version()}


def save_checkpoint(path: str | Path, checkpoint: dict) -> None:
    """Write atomically: a temp file in the same folder, fsync, then rename over ``path``.

    A crash at any moment leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise EcgnetError(f"could not save checkpoint {path} ({e.strerror or e}); the previous {path.name} is intact. Free disk space or fix permissions, then resume") from None
        raise


def load_checkpoint(path: str | Path) -> dict:
    """Load and sanity-check an ecgnet checkpoint (``weights_only``: no code can run from it)."""
    path = Path(path)
    if not path.exists():
        raise EcgnetError(f"checkpoint {path} not found; train one with 'python train.py' (it writes log/<run>/best.pt)")
    if path.is_dir():
        raise EcgnetError(f"checkpoint {path} is a directory; pass a .pt file such as {path}/best.pt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise EcgnetError(f"checkpoint {path} holds a Python object ({found.group(1)}) that is not allowed to load: "
                              "ecgnet loads weights only, so a checkpoint cannot run code; use a checkpoint written by train.py") from None
        raise EcgnetError(f"checkpoint {path} is truncated or corrupt (not a readable PyTorch file); use another checkpoint, e.g. last.pt or best.pt of the run") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise EcgnetError(f"checkpoint {path} is truncated or corrupt ({e.__class__.__name__}); use another checkpoint, e.g. last.pt or best.pt of the run") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != CHECKPOINT_KIND:
        raise EcgnetError(f"{path} is not an ecgnet checkpoint (no '{CHECKPOINT_KIND}' marker); pass a best.pt or last.pt written by train.py")
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise EcgnetError(f"checkpoint {path} has format version {version}, newer than this ecgnet understands ({FORMAT_VERSION}); upgrade ecgnet")
    return ckpt


def model_from_checkpoint(ckpt: dict, source: str = "checkpoint") -> ECGNet:
    """Rebuild the model from the checkpoint's own hyper-parameters and load its weights."""
    try:
        model = ECGNet(**ckpt["model_args"])
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise EcgnetError(f"{source}: weights do not match the ECGNet architecture ({str(e).splitlines()[0][:160]})") from None
    return model


def load_trunk(model: ECGNet, ckpt: dict, source: str) -> None:
    """Copy the conv trunk of a pretrained MIT-BIH checkpoint into ``model``."""
    if ckpt.get("task") != "mitbih":
        raise EcgnetError(f"pretrained checkpoint {source} is a '{ckpt.get('task')}' model, not an MIT-BIH trunk; pass a checkpoint trained with task 'mitbih'")
    theirs = ckpt.get("model_args", {})
    for key in ("channels", "n_blocks"):
        if theirs.get(key) != model.model_args[key]:
            raise EcgnetError(f"pretrained checkpoint {source} has {key}={theirs.get(key)}, this model has {model.model_args[key]}; the architectures do not match")
    trunk = {k: v for k, v in ckpt["model"].items() if k.startswith(("stem.", "blocks."))}
    expected = {k for k in model.state_dict() if k.startswith(("stem.", "blocks."))}
    if set(trunk) != expected or any(trunk[k].shape != model.state_dict()[k].shape for k in trunk):
        raise EcgnetError(f"pretrained checkpoint {source}: its trunk weights do not match the ECGNet trunk")
    model.load_state_dict(trunk, strict=False)


# ---------------------------------------------------------------- batching and augmentation

def epoch_batches(labels: torch.Tensor, batch_size: int, generator: torch.Generator, balanced: bool) -> list[torch.Tensor]:
    """Index batches for one epoch: a random permutation, or class-balanced draws with replacement."""
    n = len(labels)
    if balanced:
        counts = torch.bincount(labels).clamp(min=1).double()
        order = torch.multinomial((1.0 / counts)[labels], n, replacement=True, generator=generator)
    else:
        order = torch.randperm(n, generator=generator)
    return list(order.split(batch_size))


def augment_beats(x: torch.Tensor, generator: torch.Generator, amplitude: float = 0.1, stretch: float = 0.1) -> torch.Tensor:
    """The paper's augmentation: scale each beat's amplitude by U(1±a) and stretch it in time by U(1±s).

    Stretching resamples the beat by linear interpolation on the same 187-sample grid
    (samples beyond the original end read as zero padding). x: (B, 1, 187).
    """
    b = x.shape[0]
    scale = 1 + amplitude * (2 * torch.rand(b, 1, generator=generator) - 1)
    factor = 1 + stretch * (2 * torch.rand(b, 1, generator=generator) - 1)
    scale, factor = scale.to(x.device), factor.to(x.device)
    pos = torch.arange(BEAT_LENGTH, device=x.device, dtype=torch.float32) / factor  # (B, 187) source positions
    left = pos.floor().long()
    frac = pos - left
    padded = F.pad(x[:, 0], (0, 2))  # reads past the end give zeros
    left = left.clamp(max=BEAT_LENGTH)
    y = padded.gather(1, left) * (1 - frac) + padded.gather(1, left + 1) * frac
    return (y * scale).unsqueeze(1)


# ---------------------------------------------------------------- inference and evaluation

FROZEN_MIN_BEATS = 64   # below this, eager is faster (single-beat latency)
FROZEN_CHUNK = 256      # the frozen graph's best batch on 2 cores (bench/inference.py)


def freeze_for_cpu(model: ECGNet) -> torch.jit.ScriptModule:
    """A traced, frozen copy of ``model`` for CPU inference.

    Freezing lets oneDNN fold bias and fuse conv + ReLU / add, about 2x the eager
    throughput at batches of 64 and more (measured in bench/inference.py); the
    outputs equal eager ones to 1e-5 (tests). Building it takes about a second.
    """
    import warnings
    model = model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's maintenance-mode notices
        traced = torch.jit.trace(model, torch.rand(FROZEN_CHUNK, 1, BEAT_LENGTH))
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


@torch.inference_mode()
def predict_logits(model: ECGNet, x: torch.Tensor, batch_size: int = 1024, device: torch.device | None = None,
                   amp: bool = True, frozen: torch.jit.ScriptModule | None = None) -> torch.Tensor:
    """Logits for beats x (n, 1, 187) in eval mode, computed in batches; returned as float32 on CPU.

    With ``frozen`` (from ``freeze_for_cpu``) CPU inputs of 64 beats or more run through
    the frozen graph in chunks of 256; fewer beats run eagerly, which has lower latency.
    """
    device = device or next(model.parameters()).device
    model.eval()
    if frozen is not None and device.type == "cpu" and len(x) >= FROZEN_MIN_BEATS:
        return torch.cat([frozen(chunk) for chunk in x.split(FROZEN_CHUNK)])
    if len(x) <= batch_size and device.type == "cpu":
        return model(x)  # one batch: no copies, no autocast context (single-beat latency)
    out = []
    for chunk in x.split(batch_size):
        with autocast(device, amp):
            out.append(model(chunk.to(device, non_blocking=True)).float())
    return torch.cat(out).cpu() if out else torch.empty(0, model.n_classes)


def evaluate(model: ECGNet, data: BeatDataset, batch_size: int = 1024, device: torch.device | None = None,
             amp: bool = True, loss_weight: torch.Tensor | None = None) -> dict:
    """Metrics of ``model`` on ``data`` plus the mean cross-entropy loss."""
    logits = predict_logits(model, data.x, batch_size, device, amp)
    probs = logits.softmax(1).numpy()
    metrics = classification_metrics(data.y.numpy(), probs.argmax(1), data.class_names, probs)
    metrics["loss"] = float(F.cross_entropy(logits, data.y, weight=None if loss_weight is None else loss_weight.cpu()))
    return metrics


# ---------------------------------------------------------------- run directories

def default_run_name(cfg: Config) -> str:
    return f"{cfg.task}-{cfg.mode}-{datetime.now():%Y%m%d-%H%M%S}"


def make_run_dir(cfg: Config, overwrite: bool = False) -> Path:
    """log_dir/run_name, created fresh; an existing run is never reused unless ``overwrite``."""
    run_dir = Path(cfg.log_dir) / (cfg.run_name or default_run_name(cfg))
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise EcgnetError(f"run directory {run_dir} already exists; choose another --run-name, continue it with --resume {run_dir}, or pass --overwrite")
        for f in run_dir.iterdir():
            if f.is_file():
                f.unlink()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EcgnetError(f"cannot create run directory {run_dir} ({e.strerror}); set log_dir to a writable folder") from None
    return run_dir


@contextmanager
def sigterm_as_interrupt():
    """Treat SIGTERM like Ctrl-C so a killed job saves and exits cleanly."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------- training

@dataclass
class TrainState:
    """Everything besides the weights that a resumed run needs to continue exactly."""
    epoch: int = 0            # epochs completed
    step: int = 0             # optimiser steps taken
    best_val_macro_f1: float = -1.0
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    train_seconds: float = 0.0


def build_model(cfg: Config, n_classes: int, device: torch.device) -> tuple[ECGNet, dict | None]:
    """A fresh model for ``cfg``; for transfer modes, with the pretrained MIT-BIH trunk loaded (and frozen)."""
    model = ECGNet(n_classes=n_classes)
    source = None
    if cfg.mode != "scratch":
        pretrained = load_checkpoint(cfg.pretrained)
        load_trunk(model, pretrained, cfg.pretrained)
        source = {"path": str(cfg.pretrained), "task": pretrained["task"], "epoch": pretrained.get("epoch"),
                  "val_metrics": {k: pretrained.get("val_metrics", {}).get(k) for k in ("accuracy", "macro_f1")}}
        if cfg.mode == "frozen":
            freeze_trunk(model)
    return model.to(device), source


def make_optimizer(model: ECGNet, cfg: Config) -> torch.optim.Optimizer:
    """Adam over the trainable parameters; in 'finetune' the trunk gets lr * trunk_lr_scale."""
    trunk = [p for p in model.trunk_parameters() if p.requires_grad]
    head = list(model.head.parameters())
    groups = [{"params": head, "lr": cfg.lr}]
    if trunk:
        groups.append({"params": trunk, "lr": cfg.lr * (cfg.trunk_lr_scale if cfg.mode == "finetune" else 1.0)})
    # The fused kernel updates all tensors in one call: 0.5 vs 2.2 ms per step on 2 CPU cores.
    fused = True if head[0].device.type in ("cpu", "cuda") else None
    return torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay, fused=fused)


def weight_average(model: ECGNet, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights (None when ``decay`` is 0).

    At a constant learning rate of 1e-3 the validation accuracy of the raw weights swings
    by about 0.3% from epoch to epoch; the average follows the same path with
    the swings smoothed out. The decay warms up as min(decay, (1+n)/(10+n)) so that on
    short runs the average is not dominated by the first steps.
    """
    if not decay:
        return None

    def ema(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        # The weight stays a device tensor: no host sync per step on a GPU.
        torch._foreach_lerp_(averaged, current, 1 - ((1 + num_averaged) / (10 + num_averaged)).clamp(max=decay))

    return AveragedModel(model, multi_avg_fn=ema, use_buffers=True)


def train_one_epoch(model: ECGNet, optimizer: torch.optim.Optimizer, scheduler, x: torch.Tensor, y: torch.Tensor,
                    generator: torch.Generator, cfg: Config, majority: int, loss_weight: torch.Tensor | None = None,
                    desc: str = "train", ema: AveragedModel | None = None) -> dict:
    """One pass over the resident training tensors x (n, 1, 187), y (n,) on the model's device.

    Batches are gathered by index from x (no per-sample collation); beats outside the
    majority class are augmented when ``cfg.augment``; ``ema`` is updated after every
    step. Returns loss, accuracy, steps, beats.
    """
    device = x.device
    use_amp = cfg.amp and device.type == "cuda"
    model.train()
    batches = epoch_batches(y.cpu() if device.type != "cpu" else y, cfg.batch_size, generator, cfg.imbalance == "balanced_sampling")
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    bar = tqdm(batches, desc=desc, leave=False, mininterval=1.0, disable=None, file=sys.stderr)
    for i, idx in enumerate(bar):
        idx = idx.to(device, non_blocking=True)
        xb, yb = x[idx], y[idx]
        if cfg.augment:
            minority = (yb != majority).nonzero().squeeze(1)
            if len(minority):
                xb = xb.index_copy(0, minority, augment_beats(xb[minority], generator))
        with autocast(device, use_amp):
            logits = model(xb)
        loss = F.cross_entropy(logits.float(), yb, weight=loss_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        # Running sums stay on the device: no host sync per step on a GPU.
        loss_sum += loss.detach() * len(yb)
        correct += (logits.argmax(1) == yb).sum()
        seen += len(yb)
        if i % 50 == 0:
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}")
    bar.close()
    return {"loss": loss_sum.item() / seen, "accuracy": correct.item() / seen, "steps": len(batches), "beats": seen}


def train(cfg: Config, splits: Splits, run_dir: Path, resume: dict | None = None,
          on_epoch_end: Callable[[ECGNet, dict, ECGNet], None] | None = None) -> dict:
    """Train ``cfg`` on ``splits`` into ``run_dir``; returns the final checkpoint summary.

    Writes TensorBoard events, last.pt every epoch and best.pt on each better
    validation macro-F1. Model selection and early stopping use validation only, on
    the evaluated weights: the moving average when ``cfg.ema_decay`` > 0, else the raw
    ones. ``resume`` is a last.pt checkpoint to continue from.
    ``on_epoch_end(evaluated_model, record, raw_model)`` is an observer (benchmarks);
    it must not steer training.
    """
    from torch.utils.tensorboard import SummaryWriter

    task = TASKS[cfg.task]
    device = setup_torch(cfg.num_threads, cfg.device)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)  # batch order + augmentation; saved for exact resume
    model, pretrained_info = build_model(cfg, task.n_classes, device)
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_decay_every, gamma=cfg.lr_decay)
    ema = weight_average(model, cfg.ema_decay)
    evaluated = model if ema is None else ema.module
    state = TrainState()
    history: list[dict] = []
    if resume is not None:
        # "model" holds the evaluated weights; with averaging, the raw ones are "train_model".
        model.load_state_dict(resume.get("train_model") or resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        generator.set_state(resume["generator"])
        state = TrainState(**resume["train_state"])
        history = list(resume["history"])
        pretrained_info = resume.get("pretrained")
        if ema is not None:
            ema.module.load_state_dict(resume["model"])
            ema.n_averaged.fill_(state.step)  # one update per step

    train_x, train_y = splits.train.x.to(device), splits.train.y.to(device)
    counts = splits.train.class_counts()
    majority = int(counts.argmax())
    loss_weight = None
    if cfg.imbalance == "class_weights":
        loss_weight = torch.tensor(len(splits.train) / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32, device=device)
    use_amp = cfg.amp and device.type == "cuda"
    n_params = count_parameters(model, trainable_only=True)
    print(f"{cfg.task} ({cfg.mode}): {len(splits.train)} train / {len(splits.val)} val beats from {splits.data_dir}, "
          f"{n_params:,} trainable parameters, device {device}, {torch.get_num_threads()} threads -> {run_dir}")

    def weights(m: ECGNet) -> dict:
        return {k: v.detach().cpu() for k, v in m.state_dict().items()}

    def checkpoint(val_metrics: dict) -> dict:
        return {
            "kind": CHECKPOINT_KIND, "format_version": FORMAT_VERSION, "versions": library_versions(),
            "task": cfg.task, "class_names": list(task.class_names), "model_args": model.model_args,
            "model": weights(evaluated), "train_model": None if ema is None else weights(model),
            "config": cfg.to_dict(), "epoch": state.epoch, "step": state.step,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(), "train_state": vars(state).copy(), "history": history,
            "val_metrics": val_metrics, "pretrained": pretrained_info,
            "split": {"data_dir": str(splits.data_dir), "seed": cfg.seed, "val_fraction": cfg.val_fraction,
                      "test_fraction": cfg.test_fraction, "n_train": len(splits.train), "n_val": len(splits.val),
                      "test_indices": None if splits.test_indices is None else splits.test_indices.tolist()},
        }

    # Scalars are logged per epoch, before last.pt is saved: on resume drop any logged past it.
    writer = SummaryWriter(str(run_dir), purge_step=state.epoch + 1 if resume else None)
    try:
        with sigterm_as_interrupt():
            while state.epoch < cfg.epochs:
                if cfg.patience and state.epochs_without_improvement >= cfg.patience:
                    break
                epoch_start = time.perf_counter()
                stats = train_one_epoch(model, optimizer, scheduler, train_x, train_y, generator, cfg, majority, loss_weight,
                                        desc=f"epoch {state.epoch + 1}/{cfg.epochs}", ema=ema)
                state.step += stats["steps"]
                epoch_seconds = time.perf_counter() - epoch_start
                state.epoch += 1
                state.train_seconds += epoch_seconds
                val = evaluate(evaluated, splits.val, cfg.eval_batch_size, device, use_amp, loss_weight)
                improved = val["macro_f1"] > state.best_val_macro_f1
                if improved:
                    state.best_val_macro_f1, state.best_epoch, state.epochs_without_improvement = val["macro_f1"], state.epoch, 0
                else:
                    state.epochs_without_improvement += 1
                record = {"epoch": state.epoch, "step": state.step, "train_loss": stats["loss"], "train_accuracy": stats["accuracy"],
                          "val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
                          "lr": optimizer.param_groups[0]["lr"], "epoch_seconds": epoch_seconds, "beats_per_second": stats["beats"] / epoch_seconds}
                if ema is not None:  # the raw weights' score, to show what averaging adds
                    raw = evaluate(model, splits.val, cfg.eval_batch_size, device, use_amp, loss_weight)
                    record.update(val_raw_accuracy=raw["accuracy"], val_raw_macro_f1=raw["macro_f1"])
                history.append(record)
                log_epoch(writer, record, val)
                ckpt = checkpoint(val)
                if improved:
                    save_checkpoint(run_dir / "best.pt", ckpt)
                save_checkpoint(run_dir / "last.pt", ckpt)
                print(f"epoch {state.epoch:3d}/{cfg.epochs}  train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f} | "
                      f"val loss {val['loss']:.4f} acc {val['accuracy']:.4f} macro-F1 {val['macro_f1']:.4f} | "
                      f"lr {record['lr']:.2e} | {epoch_seconds:.1f} s ({record['beats_per_second']:.0f} beats/s)"
                      + ("  * best" if improved else ""), flush=True)
                if on_epoch_end is not None:
                    on_epoch_end(evaluated, record, model)
    except KeyboardInterrupt:
        writer.close()
        done = f"last.pt holds epoch {state.epoch}" if state.epoch else "no epoch was completed"
        print(f"\ninterrupted during epoch {state.epoch + 1}; {done}. Resume with: python train.py --resume {run_dir}", file=sys.stderr)
        raise
    best = load_checkpoint(run_dir / "best.pt")
    writer.add_hparams({k: (str(v) if isinstance(v, (list, type(None))) else v) for k, v in cfg.to_dict().items()},
                       {"hparam/best_val_macro_f1": state.best_val_macro_f1, "hparam/best_val_accuracy": best["val_metrics"]["accuracy"],
                        "hparam/best_epoch": state.best_epoch, "hparam/train_seconds": state.train_seconds}, run_name=".")
    writer.close()
    stop = "early stop" if state.epoch < cfg.epochs else "epoch limit"
    print(f"done ({stop}) after {state.epoch} epochs, {state.train_seconds:.0f} s of training; best val macro-F1 "
          f"{state.best_val_macro_f1:.4f} at epoch {state.best_epoch} -> {run_dir / 'best.pt'}")
    return {"best_epoch": state.best_epoch, "best_val_macro_f1": state.best_val_macro_f1, "epochs": state.epoch,
            "train_seconds": state.train_seconds, "history": history}


def log_epoch(writer, record: dict, val: dict) -> None:
    """Scalars, per-class F1 and the confusion matrix of one epoch to TensorBoard."""
    step = record["epoch"]
    writer.add_scalar("loss/train", record["train_loss"], step)
    writer.add_scalar("loss/val", record["val_loss"], step)
    writer.add_scalar("accuracy/train", record["train_accuracy"], step)
    writer.add_scalar("accuracy/val", record["val_accuracy"], step)
    writer.add_scalar("macro_f1/val", record["val_macro_f1"], step)
    if "val_raw_accuracy" in record:
        writer.add_scalar("accuracy/val_raw_weights", record["val_raw_accuracy"], step)
        writer.add_scalar("macro_f1/val_raw_weights", record["val_raw_macro_f1"], step)
    writer.add_scalar("lr", record["lr"], step)
    writer.add_scalar("speed/beats_per_second", record["beats_per_second"], step)
    for name, c in val["per_class"].items():
        writer.add_scalar(f"f1_val/{name}", c["f1"], step)
    writer.add_figure("confusion_matrix/val", confusion_figure(val, f"validation, epoch {step}"), step)


# ---------------------------------------------------------------- testing a checkpoint

def load_test_set(ckpt: dict, data_dir: str | Path | None, source: str) -> tuple[BeatDataset, Path]:
    """The held-out test beats of the checkpoint's task: the test file, or the recorded test split."""
    from .data import load_files, resolve_data_dir

    task = TASKS.get(ckpt.get("task"))
    if task is None:
        raise EcgnetError(f"{source}: unknown task {ckpt.get('task')!r}")
    folder = resolve_data_dir(data_dir or ckpt["split"]["data_dir"], task)
    if task.test_stems:
        return load_files(folder, task.test_stems, task), folder
    full = load_files(folder, task.train_stems, task)
    indices = ckpt["split"]["test_indices"]
    expected = ckpt["split"]["n_train"] + ckpt["split"]["n_val"] + len(indices)
    if len(full) != expected:
        raise EcgnetError(f"{source} was trained on {expected} {task.name} beats but {folder} holds {len(full)}; "
                          f"pass the data it was trained on with --data-dir {ckpt['split']['data_dir']}")
    return full.subset(np.asarray(indices)), folder


def evaluate_checkpoint(checkpoint_path: str | Path, data_dir: str | Path | None = None, device: str = "auto",
                    batch_size: int = 1024) -> dict:
    """Evaluate a checkpoint on its task's test set; write metrics.json and confusion_matrix.png beside it.

    The metrics are also logged to the run's TensorBoard (tag prefix 'test/').
    """
    import json
    from torch.utils.tensorboard import SummaryWriter
    from .metrics import save_confusion_png

    checkpoint_path = Path(checkpoint_path)
    ckpt = load_checkpoint(checkpoint_path)
    model = model_from_checkpoint(ckpt, str(checkpoint_path))
    dev = setup_torch(0, device)
    test_set, folder = load_test_set(ckpt, data_dir, str(checkpoint_path))
    metrics = evaluate(model.to(dev), test_set, batch_size, dev)
    metrics.update(checkpoint=str(checkpoint_path), data_dir=str(folder), task=ckpt["task"], epoch=ckpt["epoch"])
    out_dir = checkpoint_path.parent
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    title = f"{ckpt['task']} test: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
    save_confusion_png(metrics, out_dir / "confusion_matrix.png", title)
    writer = SummaryWriter(str(out_dir))
    for key in ("accuracy", "macro_f1", "roc_auc"):
        if key in metrics:
            writer.add_scalar(f"test/{key}", metrics[key], ckpt["epoch"])
    for name, c in metrics["per_class"].items():
        writer.add_scalar(f"test_f1/{name}", c["f1"], ckpt["epoch"])
    writer.add_figure("confusion_matrix/test", confusion_figure(metrics, title), ckpt["epoch"])
    writer.close()
    return metrics
