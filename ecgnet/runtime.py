"""Where and how PyTorch runs: device choice, autocast, the process settings entry points apply, SIGTERM during training.

``configure_process`` changes process-wide state (thread count, deterministic mode, the
C allocator); library code never calls it: the CLIs and benchmarks do, explicitly.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

from .errors import EcgnetError


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


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA (no loss scaling needed); a no-op elsewhere."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def keep_freed_memory() -> bool:
    """Let glibc's malloc reuse freed tensor memory instead of returning it to the kernel.

    By default glibc serves every block over a few MB with a fresh mmap and unmaps it on
    free, so each new activation or gradient (3 MB per conv layer at batch 128) is
    page-faulted in again, thousands of faults per training step. Keeping blocks up to
    32 MB (glibc's maximum) in the heap, and not trimming it, removes them
    (docs/benchmarks.md). Returns whether it applied (glibc only; elsewhere a no-op).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False


def configure_process(num_threads: int = 0, device: str = "auto", deterministic: bool = True) -> torch.device:
    """Process settings for ecgnet's entry points; returns the selected device.

    Thread count (0 = physical cores, shared among the ranks torchrun starts on this
    machine), deterministic algorithms on CPU (training; ``deterministic=False`` for
    prediction, whose kernels do not depend on it and which need not import the
    machinery behind it), and on CPU the allocator setting of ``keep_freed_memory``.
    """
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(num_threads or max(1, physical_cores() // local_ranks))
    dev = select_device(device)
    if dev.type == "cpu":
        keep_freed_memory()
    # CPU kernels used here are deterministic for a fixed thread count; on CUDA some
    # backward kernels are not, so determinism is only promised on CPU.
    if not deterministic:
        return dev
    torch.use_deterministic_algorithms(dev.type == "cpu", warn_only=True)
    # Deterministic mode would also fill every new tensor with NaN to expose reads of
    # uninitialised memory; every kernel here writes its whole output, so the fill
    # changes no result and only costs time.
    torch.utils.deterministic.fill_uninitialized_memory = False
    return dev


@contextmanager
def sigterm_as_interrupt():
    """Treat SIGTERM like Ctrl-C so a killed job saves and exits cleanly (main thread only)."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
