"""docker-compose.yml is valid and mirrors the native topology."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml
from pathlib import Path

from gateway.settings import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "docker-compose.yml"


def test_compose_runs_exactly_the_native_production_topology(tmp_path: Path) -> None:
    from gateway.production_stack import ProductionStack
    from tests.conftest import make_settings

    services = yaml.safe_load(COMPOSE.read_text())["services"]
    settings = make_settings(tmp_path, database_url="postgresql+psycopg://postgres@127.0.0.1:5432/x",
                             rasa_tracker_url="postgresql+psycopg://postgres@127.0.0.1:5432/y",
                             redis_url="redis://127.0.0.1:6379/0", broker_url="amqp://guest:guest@127.0.0.1:5672/%2F")
    native = {process.name for process in ProductionStack(settings)._define()}
    assert set(services) == native | {"postgres", "redis", "rabbitmq"}
    for name in services:
        assert "healthcheck" in services[name], name
    # Only the public proxy is reachable from outside.
    assert [name for name, svc in services.items() if svc.get("ports")] == ["gateway-proxy"]
    for name, service in services.items():
        if "build" in service:
            assert (PROJECT_ROOT / service["build"]["dockerfile"]).exists(), name
    # Rasa publishes its events to the queue the log consumer reads, and shares the atomic lock store.
    endpoints = yaml.safe_load((PROJECT_ROOT / "bot" / "endpoints.production.yml").read_text())
    assert endpoints["event_broker"]["type"] == "pika"
    assert endpoints["event_broker"]["queues"] == ["${SWITCHBOARD_BROKER_QUEUE}"]
    assert endpoints["lock_store"]["type"] == "connectors.rasa_lock_store.AtomicRedisLockStore"
    assert services["rasa-1"]["environment"]["SWITCHBOARD_BROKER_QUEUE"] == "switchboard_events"
    assert services["rasa-2"] == services["rasa-1"] and services["gateway-2"] == services["gateway-1"]
    assert services["gateway-1"]["environment"]["SWITCHBOARD_RASA_REPLICA_URLS"] == "http://rasa-1:5005,http://rasa-2:5005"


def test_compose_config_validates_and_demands_secrets() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: `make test` installs it (scripts/setup.sh)")
    env = {"PATH": os.environ["PATH"]}
    missing = subprocess.run([binary, "config", "-q"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                             timeout=60)
    # A deployment without secrets must not start with defaults.
    assert missing.returncode != 0 and "set " in missing.stderr
    env.update(SWITCHBOARD_SECRET_KEY="k" * 32, SWITCHBOARD_RASA_TOKEN="t" * 32, POSTGRES_PASSWORD="p" * 16,
               RABBITMQ_PASSWORD="r" * 16)
    ok = subprocess.run([binary, "config", "-q"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
