"""``ecgnet app`` stops its server: no Streamlit process and no listening port outlive it."""
import signal
import socket
import subprocess
import sys
import time

import pytest
from helpers import ENV, ROOT, alive, descendants, free_port, port_open, start_app

pytestmark = pytest.mark.slow


def stop_and_check(proc: subprocess.Popen, port: int, sig: int, kill_parent_only: bool = False) -> int | None:
    """Send ``sig`` to ``ecgnet app``; within 5 s nothing listens on ``port`` and nothing it started lives."""
    below = descendants(proc.pid)
    assert below, "ecgnet app runs its server as a child process"
    proc.send_signal(sig)
    end = time.time() + 5
    while time.time() < end and (port_open(port) or any(alive(pid) for pid in below)):
        time.sleep(0.1)
    assert not port_open(port), f"port {port} still listened on 5 s after signal {sig}"
    assert not [pid for pid in below if alive(pid)], f"a process started by ecgnet app outlived signal {sig}"
    return proc.wait(timeout=10)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 0), (signal.SIGINT, 130), (signal.SIGHUP, 0)])
def test_a_stop_signal_stops_the_server(sig, code):
    port = free_port()
    assert stop_and_check(start_app(port), port, sig) == code


def test_a_killed_app_takes_its_server_along():
    port = free_port()
    stop_and_check(start_app(port), port, signal.SIGKILL)


def test_a_taken_port_is_one_line_and_exit_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "ecgnet", "app", "--port", str(port)], cwd=ROOT, env=ENV,
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: port {port} on 127.0.0.1 is taken (another server listens there): "
                                   f"pick another with --port, e.g. --port {port + 1}")


@pytest.mark.parametrize("args, says", [(["--port", "70000"], "is not a TCP port"),
                                        (["--address", "no-such-host.invalid"], "is not an address of this machine")])
def test_bad_port_or_address_is_one_line(args, says):
    proc = subprocess.run([sys.executable, "-m", "ecgnet", "app", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
