"""`make run`'s runner: starts all three services, prints the demo address, Ctrl-C stops them all."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from gateway.stack import APP_PYTHON, _env_for
from gateway.settings import PROJECT_ROOT
from tests.conftest import make_settings


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_runner_prints_demo_address_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    runner = subprocess.Popen(
        [str(APP_PYTHON), "-m", "gateway.stack"], cwd=PROJECT_ROOT, env=_env_for(settings),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    try:
        assert runner.stdout is not None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = runner.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Demo page:" in line:
                break
        demo_line = next((line for line in lines if "Demo page:" in line), None)
        assert demo_line is not None, "".join(lines)
        demo_url = demo_line.split("Demo page:")[1].strip()
        assert demo_url == f"{settings.gateway_url}/demo"
        assert "data-widget-key" in httpx.get(demo_url, timeout=10).text
        ports = [settings.gateway_port, settings.rasa_port, settings.actions_port]
        assert all(port_open(port) for port in ports)

        runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=60) == 0
        time.sleep(1)
        assert not any(port_open(port) for port in ports), "a service outlived Ctrl-C"
    finally:
        if runner.poll() is None:
            runner.kill()
