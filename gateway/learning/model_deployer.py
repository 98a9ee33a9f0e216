"""Loads one tenant's model archive into running Rasa servers without stopping them.

It calls the gateway channel's ``PUT /webhooks/gateway/model`` (``connectors/rasa_channel.py``) with the
tenant, which builds the tenant's new agent on a worker thread while its old one keeps answering, then
swaps them; other tenants' agents are not touched, and a model that fails to load leaves the old one
serving. Each server answers with the ``model_id`` it now serves for the tenant, which must be the
archive's. Replicas are loaded one after the other. (The registry's production file, written when the
version is marked production, makes a replica that missed this call, or starts later, load it too.)
"""

from __future__ import annotations

from pathlib import Path

import httpx

from gateway.learning.model_evaluator import read_model_id


#: The channel's non-blocking model swap (``connectors/rasa_channel.py``).
SWAP_PATH = "/webhooks/gateway/model"


class DeploymentError(RuntimeError):
    """A Rasa server refused or failed to load the model."""


class RasaUnreachableError(DeploymentError):
    """No Rasa server answered (none is running): nothing refused the model."""


class RasaModelDeployer:
    """Hot-swaps the model of one or more Rasa servers (replicas share the file system or a volume).

    Args:
        rasa_urls: Base URLs of the Rasa servers (private network).
        token: Rasa's auth token (its HTTP API takes it in the query string; Rasa stays private).
        timeout_s: How long one server may take to load a model.
    """

    def __init__(self, rasa_urls: list[str], token: str, timeout_s: float = 300.0) -> None:
        self.rasa_urls = rasa_urls
        self._token = token
        self.timeout_s = timeout_s

    def serving(self) -> dict[str, str | None]:
        """The ``model_id`` of the agent each server started with (None when it is unreachable)."""
        result: dict[str, str | None] = {}
        for url in self.rasa_urls:
            try:
                response = httpx.get(f"{url}/status", params={"token": self._token}, timeout=5.0)
                result[url] = response.json().get("model_id") if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                result[url] = None
        return result

    def load(self, tenant_id: str, archive: Path) -> str | None:
        """Load ``archive`` as ``tenant_id``'s model into every server and return its ``model_id``.

        Raises:
            DeploymentError: A server could not load it (that server keeps its previous model).
        """
        expected = read_model_id(archive)
        for url in self.rasa_urls:
            try:
                response = httpx.put(f"{url}{SWAP_PATH}", headers={"Authorization": f"Bearer {self._token}"},
                                     json={"tenant_id": tenant_id, "model_file": str(Path(archive).resolve())}, timeout=self.timeout_s)
            except httpx.ConnectError as exc:
                raise RasaUnreachableError(f"{url} unreachable: {exc.__class__.__name__}") from exc
            except httpx.HTTPError as exc:
                raise DeploymentError(f"{url} did not answer: {exc.__class__.__name__}") from exc
            if response.status_code != 200:
                raise DeploymentError(f"{url} refused the model: HTTP {response.status_code} {response.text[:300]}")
            try:
                reported = response.json().get("model_id")
            except ValueError:
                reported = None
            if expected is not None and reported != expected:
                raise DeploymentError(f"{url} reports model {reported}, expected {expected}")
        return expected
