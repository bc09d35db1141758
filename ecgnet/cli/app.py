"""Start the web page: upload a recording or beats, browse the labelled strip, see why a beat got its label.

    ecgnet app                    # http://127.0.0.1:8501, this machine only
    ecgnet app --port 8600 --address 0.0.0.0    # reachable from the network: only where that is safe

Offline: the shipped models and the runs in log/ are offered; a checkpoint can be uploaded.
Stopping this command (Ctrl-C, SIGTERM, SIGHUP) stops the page's server and frees the port.
Needs the 'app' extra: pip install -e ".[app]".
"""
from __future__ import annotations

import argparse
import errno
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..errors import EXIT_INTERRUPTED, EcgnetError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_GRACE_S = 10.0  # how long the server may take to shut down cleanly before it is killed


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1", help="interface to listen on (default: this machine only)")


def run(args: argparse.Namespace) -> int:
    from importlib.util import find_spec

    if find_spec("streamlit") is None or find_spec("plotly") is None:
        raise EcgnetError("the web page needs Streamlit and plotly: pip install -e \".[app]\" (or pip install streamlit plotly)")
    from ..constants import MAX_UPLOAD_MB

    check_port_free(args.address, args.port)
    page = Path(__file__).resolve().parents[1] / "webapp" / "app.py"
    command = [sys.executable, "-m", "streamlit", "run", str(page), "--server.address", args.address, "--server.port", str(args.port),
               "--server.headless", "true", "--server.maxUploadSize", str(MAX_UPLOAD_MB), "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "minimal"]
    return serve(command)


def check_port_free(address: str, port: int) -> None:
    """Refuse, with one line, a port that something already listens on (Streamlit would pick another silently)."""
    if not 0 < port < 65536:
        raise EcgnetError(f"--port {port} is not a TCP port: give one in 1-65535, e.g. --port 8501")
    try:
        family, kind, proto, _, where = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise EcgnetError(f"--address {address!r} is not an address of this machine ({e.strerror}): give e.g. --address 127.0.0.1") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: a closed port in TIME_WAIT is free
        try:
            probe.bind(where)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise EcgnetError(f"port {port} on {address} is taken (another server listens there): "
                                  f"pick another with --port, e.g. --port {port + 1}") from None
            raise EcgnetError(f"cannot listen on {address}:{port} ({e.strerror}): pick another --port or --address") from None


def _stop_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM it when ecgnet app dies, even by SIGKILL."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def serve(command: list[str]) -> int:
    """Run the server as a child that lives and dies with this process.

    SIGTERM, SIGINT and SIGHUP are forwarded to it (as SIGTERM: Streamlit's clean shutdown) and waited
    for; after ``STOP_GRACE_S`` it is killed. Exit code 0 on a stop by SIGTERM/SIGHUP, 130 on Ctrl-C,
    else the server's own. The child runs in its own session, so Ctrl-C in a terminal reaches it once,
    through this process.
    """
    linux = sys.platform.startswith("linux")
    child = subprocess.Popen(command, start_new_session=True, preexec_fn=_stop_with_parent if linux else None)
    received: list[int] = []

    def forward(signum: int, _frame) -> None:
        if not received:
            received.append(signum)
            child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in STOP_SIGNALS}
    deadline = None
    try:
        while child.poll() is None:
            try:
                child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if received and deadline is None:
                    deadline = time.monotonic() + STOP_GRACE_S
                elif deadline is not None and time.monotonic() > deadline:
                    child.kill()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not received:
        return child.returncode
    return EXIT_INTERRUPTED if received[0] == signal.SIGINT else 0
