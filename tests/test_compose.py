"""docker-compose.yml is valid and mirrors the native topology."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from gateway.settings import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "docker-compose.yml"


def test_compose_has_every_service_with_healthchecks() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert set(services) == {"gateway", "rasa", "actions", "postgres", "redis", "rabbitmq", "log-consumer"}
    for name in ("rasa", "actions", "postgres", "redis", "rabbitmq", "log-consumer"):
        assert "healthcheck" in services[name], name
    # Only the gateway is reachable from outside.
    assert [name for name, svc in services.items() if svc.get("ports")] == ["gateway"]
    for name in ("gateway", "rasa", "actions", "log-consumer"):
        assert (PROJECT_ROOT / services[name]["build"]["dockerfile"]).exists()
    # Rasa publishes its events to the queue the log consumer reads.
    endpoints = yaml.safe_load((PROJECT_ROOT / "bot" / "endpoints.production.yml").read_text())
    assert endpoints["event_broker"]["type"] == "pika"
    assert endpoints["event_broker"]["queues"] == ["${SWITCHBOARD_BROKER_QUEUE}"]
    assert services["rasa"]["environment"]["SWITCHBOARD_BROKER_QUEUE"] == "switchboard_events"


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
