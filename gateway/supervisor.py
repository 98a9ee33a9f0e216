"""Keeps the stack's children running: a child that dies is restarted with backoff, its orphans killed.

Every child runs in its own process group (``start_new_session``), so stopping a child stops its
workers too (rasa-sdk's sanic workers outlived their parent and held port 5055 before).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol


class SupervisedProcess(Protocol):
    """What the supervisor needs of a child: its name, its process, whether it exited, its log."""

    name: str
    log_path: Path
    process: subprocess.Popen[bytes] | None

    def exited(self) -> bool: ...  # noqa: D102

    def log_tail(self, lines: int = 40) -> str: ...  # noqa: D102


class SupervisedStack(Protocol):
    """What the supervisor needs of a stack: its children and a way to restart one."""

    processes: Sequence[SupervisedProcess]

    def restart(self, managed: Any) -> None: ...  # noqa: D102


class Supervisor:
    """Restarts a child that died, with backoff (1 s, 2 s, 4 s … 30 s; reset after a minute up).

    While a child is down the others keep running: the gateway's ``/healthz`` reports it, and customers
    get the honest "having trouble" reply (or a person) instead of silence.

    Args:
        stack: The running stack.
        clock: Monotonic clock (tests).
    """

    def __init__(self, stack: SupervisedStack, clock: Callable[[], float] = time.monotonic) -> None:
        self.stack = stack
        self.clock = clock
        self.failures: dict[str, int] = {}
        self.due: dict[str, float] = {}
        self.started_at: dict[str, float] = {m.name: clock() for m in stack.processes}

    def tick(self) -> None:
        """Notice deaths, restart what is due."""
        now = self.clock()
        for managed in self.stack.processes:
            name = managed.name
            if not managed.exited():
                if now - self.started_at.get(name, now) > 60:
                    self.failures.pop(name, None)
                continue
            if name not in self.due:
                failures = self.failures.get(name, 0)
                delay = min(30.0, 2.0 ** failures)
                self.failures[name] = failures + 1
                self.due[name] = now + delay
                code = managed.process.returncode if managed.process else None
                print(f"{name} stopped (exit {code}); restarting in {delay:.0f} s — log {managed.log_path}",
                      file=sys.stderr, flush=True)
            elif now >= self.due[name]:
                del self.due[name]
                self.stack.restart(managed)
                self.started_at[name] = now
                print(f"{name} restarted (pid {managed.process.pid if managed.process else '?'})", flush=True)
