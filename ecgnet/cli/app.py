"""Start the web page: upload a recording or beats, browse the labelled strip, see why a beat got its label.

    ecgnet app                    # http://127.0.0.1:8501, this machine only
    ecgnet app --port 8600 --address 0.0.0.0    # reachable from the network: only where that is safe

Offline: the shipped models and the runs in log/ are offered; a checkpoint can be uploaded.
Needs the 'app' extra: pip install -e ".[app]".
"""
from __future__ import annotations

import argparse

HELP = "start the web page (Streamlit)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1", help="interface to listen on (default: this machine only)")


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys
    from importlib.util import find_spec
    from pathlib import Path

    from ..errors import EcgnetError

    if find_spec("streamlit") is None or find_spec("plotly") is None:
        raise EcgnetError("the web page needs Streamlit and plotly: pip install -e \".[app]\" (or pip install streamlit plotly)")
    from ..constants import MAX_UPLOAD_MB

    page = Path(__file__).resolve().parents[1] / "webapp" / "app.py"
    command = [sys.executable, "-m", "streamlit", "run", str(page), "--server.address", args.address, "--server.port", str(args.port),
               "--server.headless", "true", "--server.maxUploadSize", str(MAX_UPLOAD_MB), "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "minimal"]
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0
