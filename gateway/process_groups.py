"""Process groups: every child of the stack runs in its own, so stopping it stops its workers too."""

from __future__ import annotations

import os
import signal


def kill_group(pgid: int) -> None:
    """SIGKILL whatever is left of a process group (no-op when it is gone)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still alive."""
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
