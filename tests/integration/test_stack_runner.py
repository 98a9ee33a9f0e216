"""`make run`'s runner: starts all three services, prints the demo address, Ctrl-C stops them all."""

from __future__ import annotations

import contextlib
import os
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
        [str(APP_PYTHON), "-m", "gateway.run"], cwd=PROJECT_ROOT, env=_env_for(settings),
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
        # Quiet: one line per stage, then the banner; progress bars and library warnings stay in var/logs.
        before_banner = lines[:lines.index(demo_line)]
        assert len(before_banner) <= 14, "".join(lines)
        assert not any(noise in line for line in before_banner for noise in ("it/s", "Warning", "WARNING", "\r")), "".join(lines)
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


def _read_until(runner: subprocess.Popen[str], marker: str, lines: list[str], timeout_s: float = 300) -> str:
    assert runner.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = runner.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return line
    raise AssertionError(f"never saw {marker!r}:\n" + "".join(lines[-40:]))


def test_a_dead_child_is_restarted_and_a_killed_runner_leaves_nothing_behind(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    command = [str(APP_PYTHON), "-m", "gateway.run"]
    runner = subprocess.Popen(command, cwd=PROJECT_ROOT, env=_env_for(settings), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    second = None
    lines: list[str] = []
    try:
        _read_until(runner, "Demo page:", lines)
        groups = dict(item.split("=") for item in (tmp_path / "run" / "stack.pgids").read_text().split())
        os.killpg(int(groups["actions"]), signal.SIGKILL)  # the action server and all its workers
        _read_until(runner, "actions stopped", lines, 60)
        restarted = _read_until(runner, "actions restarted", lines, 60)
        assert "pid" in restarted
        deadline = time.monotonic() + 120
        while not port_open(settings.actions_port):
            assert time.monotonic() < deadline, "the action server did not come back"
            time.sleep(1)
        assert runner.poll() is None  # nothing else was stopped

        # The runner itself is killed: its children keep running, and the next start cleans them up.
        runner.kill()
        runner.wait(30)
        assert port_open(settings.gateway_port)
        second = subprocess.Popen(command, cwd=PROJECT_ROOT, env=_env_for(settings), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        more: list[str] = []
        _read_until(second, "Demo page:", more)
        assert any("left over from an earlier run" in line for line in more), "".join(more)
        second.send_signal(signal.SIGINT)
        assert second.wait(timeout=60) == 0
        time.sleep(1)
        ports = [settings.gateway_port, settings.rasa_port, settings.actions_port]
        assert not any(port_open(port) for port in ports), "a service outlived Ctrl-C"
    finally:
        for process in (runner, second):
            if process is not None and process.poll() is None:
                process.kill()
        # A runner killed above leaves its children (own process groups): stop whatever is recorded.
        pid_file = tmp_path / "run" / "stack.pgids"
        if pid_file.exists():
            for item in pid_file.read_text().split():
                with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                    os.killpg(int(item.split("=")[1]), signal.SIGKILL)
