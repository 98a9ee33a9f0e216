"""Settings refuse weak or default secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.settings import Settings
from tests.conftest import make_settings


@pytest.mark.parametrize("field", ["secret_key", "rasa_token", "admin_token"])
@pytest.mark.parametrize("weak", ["changeme", "secret", "short-but-random-x1"])
def test_weak_secrets_are_refused(tmp_path: Path, field: str, weak: str) -> None:
    with pytest.raises(ValidationError, match="at least"):
        make_settings(tmp_path, **{field: weak})


def test_missing_secret_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWITCHBOARD_SECRET_KEY", raising=False)
    monkeypatch.delenv("SWITCHBOARD_RASA_TOKEN", raising=False)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_urls_follow_ports(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rasa_port=6001, actions_port=6002, gateway_port=6003)
    assert settings.rasa_url == "http://127.0.0.1:6001"
    assert settings.actions_url == "http://127.0.0.1:6002"
    assert settings.gateway_url == "http://127.0.0.1:6003"


def test_admin_token_is_optional_and_empty_means_off(tmp_path: Path) -> None:
    assert make_settings(tmp_path).admin_token is None
    assert make_settings(tmp_path, admin_token="").admin_token is None
    assert make_settings(tmp_path, admin_token="a" * 8 + "Zq3" * 8).admin_token is not None
