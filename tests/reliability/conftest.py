"""The gateway's fixtures (scripted dialogue engine, app client) for the reliability probes."""

from tests.gateway.conftest import client, engine  # noqa: F401 - fixtures
