"""Runs the embedded stack natively: action server, Rasa server and gateway on 127.0.0.1.

``python -m gateway.run`` (``make run``) starts it; the test suite uses ``Stack`` to start the same
processes once per session.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gateway.db.session import create_db_engine, create_session_factory
from gateway.demo_seed import demo_agent_password, seed_demo
from gateway.migrate import upgrade_database
from gateway.rasa_cli import RASA_BIN
from gateway.settings import PROJECT_ROOT, Settings, get_settings
from gateway.process_groups import group_alive, kill_group

APP_PYTHON = PROJECT_ROOT / ".venv" / "bin" / "python"
BOT_DIR = PROJECT_ROOT / "bot"
#: Where each service of ``make run`` logs (and the runner its own warnings).
LOG_DIR = PROJECT_ROOT / "var" / "logs"


class StackStartError(RuntimeError):
    """A process of the stack exited or did not become healthy in time."""


@dataclass
class ManagedProcess:
    """One child process with its log file."""

    name: str
    command: list[str]
    log_path: Path
    ready: Callable[[], bool]
    process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        """Start the process in its own process group, output to its log file."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def exited(self) -> bool:
        """Whether the process has already ended."""
        return self.process is not None and self.process.poll() is not None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers (workers that outlived their parent too)."""
        if self.process is None:
            return
        if self.process.poll() is not None:
            kill_group(self.process.pid)  # the leader died; its workers may still hold the port
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        kill_group(self.process.pid)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the log, for error messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


#: Ports handed out by ``free_port`` in this process (not bound until their server starts).
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    """The lowest port the kernel gives outgoing connections (Linux's default range starts at 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port nothing listens on right now, below the kernel's range for outgoing connections.

    A port the kernel picks for ``bind(0)`` comes from the range outgoing connections take their local
    ports from, so a connection opened while a stack starts (a pool, a broker client) could take it before
    the server binds it ("address already in use": a replica that never started). Below that range only
    listeners compete, and the ports handed out here are remembered until the process ends.
    """
    top = _ephemeral_low() - 1
    for _ in range(500):
        port = random.randint(max(1024, top - 12000), top)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as probe:  # a crowded range: the kernel's choice
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scratch_settings(workdir: Path, **overrides: object) -> Settings:
    """Settings of a throw-away deployment: fresh secrets, every file under ``workdir``, free ports.

    The tests and the load benchmark start their stacks with these.
    """
    values: dict[str, object] = {
        "secret_key": secrets.token_urlsafe(32),
        "rasa_token": secrets.token_urlsafe(32),
        "database_url": f"sqlite:///{workdir / 'gateway.db'}",
        "rasa_tracker_db": workdir / "tracker.db",
        "kb_dir": workdir / "kb",
        "invoices_dir": workdir / "invoices",
        "model_registry_dir": workdir / "models",
        "training_dir": workdir / "training",
        "admin_token": None,  # the admin API is off unless asked for (.env may hold a token)
        "gateway_port": free_port(),
        "rasa_port": free_port(),
        "actions_port": free_port(),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _get_ok(url: str, params: dict[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, params=params, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _env_for(settings: Settings) -> dict[str, str]:
    """Environment every child gets: the settings as variables plus what Rasa needs."""
    env = dict(os.environ)
    tracker_db = str(settings.rasa_tracker_db)
    env.update(
        {
            "SWITCHBOARD_SECRET_KEY": settings.secret_key.get_secret_value(),
            "SWITCHBOARD_RASA_TOKEN": settings.rasa_token.get_secret_value(),
            # Empty switches the admin API off in the children even when .env holds a token.
            "SWITCHBOARD_ADMIN_TOKEN": settings.admin_token.get_secret_value() if settings.admin_token else "",
            "SWITCHBOARD_HOST": settings.host,
            "SWITCHBOARD_RASA_HOST": settings.rasa_host,
            "SWITCHBOARD_ACTIONS_HOST": settings.actions_host,
            "SWITCHBOARD_GATEWAY_PORT": str(settings.gateway_port),
            "SWITCHBOARD_RASA_PORT": str(settings.rasa_port),
            "SWITCHBOARD_ACTIONS_PORT": str(settings.actions_port),
            "SWITCHBOARD_DATABASE_URL": settings.database_url,
            "SWITCHBOARD_RASA_TRACKER_DIALECT": "sqlite",
            "SWITCHBOARD_RASA_TRACKER_DB": tracker_db,
            "SWITCHBOARD_DEMO_TENANT": settings.demo_tenant,
            "SWITCHBOARD_DEMO_WIDGET_KEY": settings.demo_widget_key,
            "SWITCHBOARD_KB_DIR": str(settings.kb_dir),
            "SWITCHBOARD_KB_ANSWER_THRESHOLD": str(settings.kb_answer_threshold),
            "SWITCHBOARD_KB_MAX_FILE_BYTES": str(settings.kb_max_file_bytes),
            "SWITCHBOARD_KB_HELP_CENTRE": str(settings.kb_help_centre),
            "SWITCHBOARD_INVOICES_DIR": str(settings.invoices_dir),
            "SWITCHBOARD_MODEL_REGISTRY_DIR": str(settings.model_registry_dir),
            "SWITCHBOARD_TRAINING_DIR": str(settings.training_dir),
            "SWITCHBOARD_GATE_TOLERANCE": str(settings.gate_tolerance),
            "SWITCHBOARD_RASA_AGENT_BUDGET_MB": str(settings.rasa_agent_budget_mb),
            "SWITCHBOARD_RATE_CONVERSATION_PER_MIN": str(settings.rate_conversation_per_min),
            "SWITCHBOARD_RATE_CONVERSATION_BURST": str(settings.rate_conversation_burst),
            "SWITCHBOARD_RATE_IP_PER_MIN": str(settings.rate_ip_per_min),
            "SWITCHBOARD_RATE_IP_BURST": str(settings.rate_ip_burst),
            "SWITCHBOARD_RATE_NEW_CONVERSATIONS_PER_MIN": str(settings.rate_new_conversations_per_min),
            **({"SWITCHBOARD_KB_ENCODER": settings.kb_encoder} if settings.kb_encoder else {}),
            "HF_HUB_OFFLINE": "1",
            "SWITCHBOARD_ACTIONS_WARM_UP": "1",
            "PYTHONPATH": str(PROJECT_ROOT),
            "RASA_TELEMETRY_ENABLED": "false",
            "SANIC_HOST": settings.actions_host,  # rasa-sdk binds here instead of 0.0.0.0
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
    )
    return env


@dataclass
class Stack:
    """The three services of the embedded default, started and stopped together.

    Args:
        settings: Ports, paths and secrets.
        log_dir: Where each service writes its log.
    """

    settings: Settings
    log_dir: Path = LOG_DIR
    processes: list[ManagedProcess] = field(default_factory=list)
    serving_model: Path | None = None

    def _actions_process(self) -> ManagedProcess:
        s = self.settings
        return ManagedProcess("actions", [str(APP_PYTHON), "-m", "actions.server",
                                          "--port", str(s.actions_port)],
                              self.log_dir / "actions.log", lambda: _get_ok(f"{s.actions_url}/health"))

    def _rasa_process(self, name: str, port: int, endpoints: str) -> ManagedProcess:
        """A Rasa server with the gateway channel on ``port``, serving the registry's production model."""
        s = self.settings
        token = s.rasa_token.get_secret_value()
        return ManagedProcess(
            name,
            [str(RASA_BIN), "run", "--model", str(self.serving_model or s.model_path), "--enable-api",
             f"--auth-token={token}", "--interface", s.rasa_host, "--port", str(port),
             "--endpoints", str(BOT_DIR / endpoints), "--credentials", str(BOT_DIR / "credentials.yml")],
            self.log_dir / f"{name}.log",
            lambda: _get_ok(f"http://{s.rasa_host}:{port}/status", {"token": token}))

    def _define(self) -> list[ManagedProcess]:
        s = self.settings
        return [
            self._actions_process(),
            self._rasa_process("rasa", s.rasa_port, "endpoints.yml"),
            ManagedProcess(
                "gateway",
                [str(APP_PYTHON), "-m", "gateway", "serve"],
                self.log_dir / "gateway.log",
                lambda: _get_ok(f"{s.gateway_url}/healthz"),
            ),
        ]

    def environment(self) -> dict[str, str]:
        """What every child process gets (the settings as variables)."""
        return _env_for(self.settings)

    def prepare_database(self, progress: Callable[[str], None] = print) -> None:
        """Migrate the gateway database and seed the demo tenant."""
        upgrade_database(self.settings.database_url)
        engine = create_db_engine(self.settings.database_url)
        sessions = create_session_factory(engine)
        seed_demo(sessions, self.settings.demo_tenant, self.settings.demo_widget_key,
                  agent_password=demo_agent_password(self.settings))
        self.prepare_knowledge_base(sessions, progress)
        self.serving_model = self.prepare_model_registry(sessions, progress)
        engine.dispose()

    def prepare_model_registry(self, sessions, progress: Callable[[str], None] = print) -> Path:  # type: ignore[no-untyped-def]
        """Register the model ``make train`` built and return the archive to serve: the registry's production version.

        A newly built base model (the bot's own data or code changed) becomes production; otherwise the
        version promoted or rolled back to last stays in production across restarts.
        """
        from gateway.learning.model_registry import ModelRegistry

        registry = ModelRegistry(sessions, self.settings.model_registry_dir)
        base, new = registry.register_base(self.settings.demo_tenant, self.settings.model_path, "make train")
        if not base.metrics:
            from gateway.learning.base_model_scores import scores_for

            scores = scores_for(self.settings.model_path, base.archive_sha256)  # hashed by register_base
            if scores:
                registry.update(self.settings.demo_tenant, base.version, metrics=scores)
        if new:
            progress(f"model registry: {self.settings.model_path.name} registered as v{base.version} and deployed")
        for tenant_id in registry.tenants_in_production():
            registry.publish(tenant_id)  # Rasa finds each tenant's model through these files
        production = registry.production(self.settings.demo_tenant)
        if production is None or not production.archive_path or not Path(production.archive_path).exists():
            return self.settings.model_path
        return Path(production.archive_path)

    def prepare_knowledge_base(self, sessions, progress: Callable[[str], None] = print) -> None:  # type: ignore[no-untyped-def]
        """Ingest the default help centre for the demo tenant (unchanged files are skipped)."""
        from knowledge_base.factory import build_knowledge_base

        folder = self.settings.kb_help_centre
        if not folder.is_dir():
            return
        kb = build_knowledge_base(self.settings, sessions)
        reports = kb.ingest_paths(self.settings.demo_tenant, [folder])
        changed = [r for r in reports if r.status in ("added", "replaced")]
        rejected = [r for r in reports if r.status == "rejected"]
        for report in rejected:
            progress(f"help centre: rejected {report.source}: {report.reason}")
        if changed:
            progress(f"help centre: {len(changed)} of {len(reports)} articles indexed for {self.settings.demo_tenant}")

    @property
    def pid_file(self) -> Path:
        """Process groups of the running stack, so a later start can clean up after a killed runner."""
        return self.settings.training_dir.parent / "run" / "stack.pgids"

    def _clean_leftovers(self, progress: Callable[[str], None]) -> None:
        """Stop process groups a previous runner left behind (it was killed before it could stop them)."""
        if not self.pid_file.exists():
            return
        for line in self.pid_file.read_text().split():
            name, _, pgid = line.partition("=")
            if pgid.isdigit() and group_alive(int(pgid)):
                progress(f"stopping {name} left over from an earlier run (process group {pgid})")
                kill_group(int(pgid))
        self.pid_file.unlink(missing_ok=True)

    def _record_groups(self) -> None:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(" ".join(f"{m.name}={m.process.pid}" for m in self.processes if m.process))

    def restart(self, managed: ManagedProcess) -> None:
        """Start a child again after it died (what is left of its process group is killed first)."""
        managed.stop()
        managed.start(self.environment())
        self._record_groups()

    def start(self, timeout_s: float = 240.0, progress: Callable[[str], None] = print) -> None:
        """Start every service and wait until all report healthy.

        Raises:
            StackStartError: A service exited or missed the deadline (the stack is stopped).
        """
        if not self.settings.model_path.exists():
            raise StackStartError(f"no trained model at {self.settings.model_path}; run `make train`")
        self.settings.rasa_tracker_db.parent.mkdir(parents=True, exist_ok=True)
        self._clean_leftovers(progress)
        self.prepare_database(progress)
        env = self.environment()
        self.processes = self._define()
        for managed in self.processes:
            managed.start(env)
            log = managed.log_path.relative_to(PROJECT_ROOT) if managed.log_path.is_relative_to(PROJECT_ROOT) else managed.log_path
            progress(f"started {managed.name} (pid {managed.process.pid if managed.process else '?'}, log {log})")
        self._record_groups()
        deadline = time.monotonic() + timeout_s
        pending = list(self.processes)
        while pending:
            for managed in list(pending):
                if managed.exited():
                    self.stop()
                    raise StackStartError(f"{managed.name} exited during start-up:\n{managed.log_tail()}")
                if managed.ready():
                    progress(f"{managed.name} is healthy")
                    pending.remove(managed)
            if pending and time.monotonic() > deadline:
                names = ", ".join(m.name for m in pending)
                tails = "\n".join(f"--- {m.name} ---\n{m.log_tail()}" for m in pending)
                self.stop()
                raise StackStartError(f"not healthy after {timeout_s:.0f}s: {names}\n{tails}")
            time.sleep(0.25)  # a quarter-second poll: the banner follows the last service within that

    def stop(self) -> None:
        """Stop the services in reverse start order."""
        for managed in reversed(self.processes):
            managed.stop()
        self.pid_file.unlink(missing_ok=True)

    def process(self, name: str) -> ManagedProcess:
        """The managed process called ``name``."""
        return next(m for m in self.processes if m.name == name)
