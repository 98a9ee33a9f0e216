"""Run one stage of ``make run`` / ``make train`` quietly: one line on the terminal, the full output in a log.

    python scripts/step.py "training the default bot" var/logs/train.log -- <command> [args …]

On a terminal the line counts the seconds while the command runs; on failure the end of the log is
printed, with the log's path, and the command's exit code is returned.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

TAIL_LINES = 30


def run_step(label: str, log: Path, command: list[str]) -> int:
    """Run ``command`` with its output appended to ``log``; print one line for the stage.

    Args:
        label: What the stage does, as the newcomer reads it.
        log: The file that gets the command's full output.
        command: The command and its arguments.

    Returns:
        The command's exit code.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    live = sys.stdout.isatty()
    with log.open("ab") as out:
        out.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {label}: {' '.join(command)}\n".encode())
        out.flush()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not live:
            print(f"{label} … (log: {log})", flush=True)
        while process.poll() is None:
            if live:
                print(f"\r{label} … {time.monotonic() - started:.0f} s (log: {log})", end="", flush=True)
            time.sleep(1.0)
    elapsed = time.monotonic() - started
    if live:
        print("\r\033[K", end="")
    if process.returncode == 0:
        print(f"{label}: done in {elapsed:.0f} s", flush=True)
        return 0
    tail = log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
    print(f"{label}: FAILED after {elapsed:.0f} s (exit {process.returncode}); the end of {log}:", file=sys.stderr)
    print("\n".join(tail), file=sys.stderr, flush=True)
    return process.returncode or 1


def main(argv: list[str]) -> int:
    """Parse ``LABEL LOG -- COMMAND …`` and run the stage."""
    if len(argv) < 4 or argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    return run_step(argv[0], Path(argv[1]), argv[3:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
