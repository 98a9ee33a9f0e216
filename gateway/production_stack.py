"""The production topology, natively: what docker-compose.yml runs, on the machine's own services.

    python -m gateway.run --production      (make run-prod)

* gateway database and Rasa's tracker store on PostgreSQL;
* two Rasa replicas sharing conversations through Redis (the atomic lock store of
  ``connectors/rasa_lock_store.py``) and publishing every event to RabbitMQ (Pika event broker), read by
  the log consumer;
* two gateway replicas sharing live events through Redis pub/sub;
* a round-robin proxy in front of each replica set (public gateway port; private Rasa port).

Only configuration differs from the embedded default: ``bot/endpoints.production.yml`` and the
``SWITCHBOARD_*`` URLs below.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from gateway.settings import Settings
from gateway.stack import APP_PYTHON, ManagedProcess, Stack, _get_ok, free_port

#: Where `make run-prod` finds the machine's services when the settings do not say otherwise.
LOCAL_SERVICES = {
    "database_url": "postgresql+psycopg://postgres@127.0.0.1:5432/switchboard",
    "rasa_tracker_url": "postgresql+psycopg://postgres@127.0.0.1:5432/switchboard_tracker",
    "redis_url": "redis://127.0.0.1:6379/0",
    "broker_url": "amqp://guest:guest@127.0.0.1:5672/%2F",
}


def production_settings(settings: Settings) -> Settings:
    """``settings`` with the machine's local services filled in where nothing else is configured."""
    updates = {}
    for key, value in LOCAL_SERVICES.items():
        current = getattr(settings, key)
        if current is None or (key == "database_url" and current.startswith("sqlite")):
            updates[key] = value
    return settings.model_copy(update=updates)


def ensure_postgres_database(url: str) -> None:
    """Create the database of a PostgreSQL URL if it does not exist yet."""
    import psycopg

    parts = urlsplit(url.replace("+psycopg", ""))
    name = parts.path.lstrip("/")
    conninfo = (f"host={parts.hostname or '127.0.0.1'} port={parts.port or 5432} "
                f"user={unquote(parts.username or 'postgres')} dbname=postgres")
    if parts.password:
        conninfo += f" password={unquote(parts.password)}"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def _consumer_ready(broker_url: str, queue: str) -> bool:
    import pika
    import pika.exceptions

    try:
        connection = pika.BlockingConnection(pika.URLParameters(broker_url))
        try:
            state = connection.channel().queue_declare(queue, durable=True, passive=True)
            return bool(state.method.consumer_count)
        finally:
            connection.close()
    except (pika.exceptions.AMQPError, OSError):
        return False


@dataclass
class ProductionStack(Stack):
    """The embedded stack's processes, replicated, on PostgreSQL, Redis and RabbitMQ.

    Args:
        rasa_replicas: Rasa servers behind the private proxy.
        gateway_replicas: Gateways behind the public proxy.
    """

    rasa_replicas: int = 2
    gateway_replicas: int = 2

    def __post_init__(self) -> None:
        s = self.settings
        for name in ("redis_url", "broker_url", "rasa_tracker_url"):
            if not getattr(s, name):
                raise ValueError(f"the production topology needs {name} (see gateway/production_stack.py)")
        if s.database_url.startswith("sqlite"):
            raise ValueError("the production topology needs a PostgreSQL database_url")
        self.rasa_ports = [free_port() for _ in range(self.rasa_replicas)]
        self.gateway_ports = [free_port() for _ in range(self.gateway_replicas)]
        replica_urls = ",".join(f"http://{s.rasa_host}:{port}" for port in self.rasa_ports)
        self.settings = s.model_copy(update={"rasa_replica_urls": replica_urls})

    def prepare_database(self, progress: Callable[[str], None] = print) -> None:
        """Create the PostgreSQL databases if needed, then migrate and seed as the embedded stack does."""
        ensure_postgres_database(self.settings.database_url)
        ensure_postgres_database(self.settings.rasa_tracker_url or "")
        super().prepare_database(progress)

    def environment(self) -> dict[str, str]:
        """The embedded stack's variables plus the services' addresses (Rasa's endpoints file reads them)."""
        s = self.settings
        env = super().environment()
        tracker = urlsplit((s.rasa_tracker_url or "").replace("+psycopg", ""))
        broker = urlsplit(s.broker_url or "")
        redis = urlsplit(s.redis_url or "")
        env.update({
            "SWITCHBOARD_RASA_TRACKER_HOST": tracker.hostname or "127.0.0.1",
            "SWITCHBOARD_RASA_TRACKER_DB": tracker.path.lstrip("/"),
            "SWITCHBOARD_RASA_TRACKER_USER": unquote(tracker.username or "postgres"),
            "SWITCHBOARD_RASA_TRACKER_PASSWORD": unquote(tracker.password or ""),
            "SWITCHBOARD_RASA_TRACKER_URL": s.rasa_tracker_url or "",
            "SWITCHBOARD_REDIS_HOST": redis.hostname or "127.0.0.1",
            "SWITCHBOARD_REDIS_URL": s.redis_url or "",
            "SWITCHBOARD_BROKER_HOST": broker.hostname or "127.0.0.1",
            "SWITCHBOARD_BROKER_USER": unquote(broker.username or "guest"),
            "SWITCHBOARD_BROKER_PASSWORD": unquote(broker.password or "guest"),
            "SWITCHBOARD_BROKER_URL": s.broker_url or "",
            "SWITCHBOARD_BROKER_QUEUE": s.broker_queue,
            "SWITCHBOARD_RASA_REPLICA_URLS": s.rasa_replica_urls or "",
        })
        return env

    def _define(self) -> list[ManagedProcess]:
        s = self.settings
        token = s.rasa_token.get_secret_value()
        processes = [self._actions_process()]
        processes += [self._rasa_process(f"rasa-{n}", port, "endpoints.production.yml")
                      for n, port in enumerate(self.rasa_ports, start=1)]
        processes.append(ManagedProcess(
            "rasa-proxy", self._proxy_command(s.rasa_host, s.rasa_port, self.rasa_ports),
            self.log_dir / "rasa-proxy.log", lambda: _get_ok(f"{s.rasa_url}/status", {"token": token})))
        processes.append(ManagedProcess(
            "log-consumer", [str(APP_PYTHON), "-m", "gateway", "log-consumer"], self.log_dir / "log-consumer.log",
            lambda: _consumer_ready(s.broker_url or "", s.broker_queue)))
        for n, port in enumerate(self.gateway_ports, start=1):
            processes.append(ManagedProcess(
                f"gateway-{n}", [str(APP_PYTHON), "-m", "gateway", "serve", "--port", str(port)],
                self.log_dir / f"gateway-{n}.log",
                lambda port=port: _get_ok(f"http://{s.host}:{port}/healthz")))
        processes.append(ManagedProcess(
            "gateway-proxy", self._proxy_command(s.host, s.gateway_port, self.gateway_ports),
            self.log_dir / "gateway-proxy.log", lambda: _get_ok(f"{s.gateway_url}/healthz")))
        return processes

    @staticmethod
    def _proxy_command(host: str, port: int, upstreams: list[int]) -> list[str]:
        command = [str(APP_PYTHON), "-m", "gateway.proxy", "--listen", f"{host}:{port}"]
        for upstream in upstreams:
            command += ["--upstream", f"{host}:{upstream}"]
        return command

    def start(self, timeout_s: float = 400.0, progress=print) -> None:  # type: ignore[no-untyped-def, override]
        """Start every process (replicas need longer: two Rasa servers load at once on two cores)."""
        super().start(timeout_s=timeout_s, progress=progress)


if __name__ == "__main__":  # pragma: no cover - use `python -m gateway.run --production`
    sys.exit("use: python -m gateway.run --production")

