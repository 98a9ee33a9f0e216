"""``make run``: start the stack, keep it running, stop it on Ctrl-C.

    python -m gateway.run               (make run: the embedded default)
    python -m gateway.run --production  (make run-prod: PostgreSQL, Redis, RabbitMQ, replicas)

A newcomer sees one line per stage and the banner; each service's full output, and this runner's own
warnings, go to ``var/logs/``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import warnings

# The help centre's encoder loads in this process: no progress bars on the newcomer's terminal (set
# before any Hugging Face library is imported: they read it once).
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

from gateway.settings import PROJECT_ROOT, Settings, get_settings  # noqa: E402
from gateway.stack import LOG_DIR, Stack, StackStartError  # noqa: E402
from gateway.supervisor import Supervisor  # noqa: E402


class StageReporter:
    """Prints each stage of the start-up as one line with the seconds since the start."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        """Print one stage line."""
        print(f"  {time.monotonic() - self.started:5.1f} s  {message}", flush=True)


def _quiet_warnings() -> None:
    """Send library warnings (deprecations of SQLAlchemy, pkg_resources …) to var/logs/run.log."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(LOG_DIR / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.captureWarnings(True)
    warnings_logger = logging.getLogger("py.warnings")
    warnings_logger.addHandler(handler)
    warnings_logger.propagate = False
    warnings.simplefilter("default")


def banner(settings: Settings) -> str:
    """The addresses a newcomer opens once the stack is up."""
    url = settings.gateway_url
    return (f"\nSwitchboard is up.\n  Demo page:  {url}/demo\n  API:        {url}/docs\n"
            f"  Health:     {url}/healthz\n  Agents:     {url}/console\n  Admin:      {url}/admin\n"
            f"  Logs:       {LOG_DIR.relative_to(PROJECT_ROOT)}/\nPress Ctrl-C to stop.")


def main(argv: list[str] | None = None) -> int:
    """Start the stack, print the addresses, supervise it, and stop everything on Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m gateway.run")
    parser.add_argument("--production", action="store_true",
                        help="PostgreSQL, Redis, RabbitMQ; two gateway and two Rasa replicas behind proxies")
    args = parser.parse_args(argv)
    _quiet_warnings()
    settings = get_settings()
    if args.production:
        from gateway.production_stack import ProductionStack, production_settings

        stack: Stack = ProductionStack(production_settings(settings))
        settings = stack.settings
    else:
        stack = Stack(settings)
    print(f"starting Switchboard ({'production topology' if args.production else 'embedded'}; "
          f"full logs in {LOG_DIR.relative_to(PROJECT_ROOT)}/)", flush=True)
    try:
        stack.start(progress=StageReporter())
    except StackStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while starting: what started is stopped too
        stack.stop()
        return 130
    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    # The handlers are in place before the banner: a Ctrl-C right after it stops cleanly too.
    print(banner(settings), flush=True)
    supervisor = Supervisor(stack)
    try:
        while not stopping:
            supervisor.tick()
            time.sleep(0.5)
        return 0
    finally:
        print("stopping…", flush=True)
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
