"""Loads a model archive into running Rasa servers without stopping them (``PUT /model``).

Rasa keeps answering with the old model while the new one loads and swaps its agent when loading
succeeded; a model that fails to load leaves the old one serving. After the swap the deployer reads
``/status`` and checks that the server reports the new archive's ``model_id``.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from gateway.learning.model_evaluator import read_model_id


class DeploymentError(RuntimeError):
    """A Rasa server refused or failed to load the model."""


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
        """The ``model_id`` each server reports (None when it is unreachable)."""
        result: dict[str, str | None] = {}
        for url in self.rasa_urls:
            try:
                response = httpx.get(f"{url}/status", params={"token": self._token}, timeout=5.0)
                result[url] = response.json().get("model_id") if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                result[url] = None
        return result

    def load(self, archive: Path) -> str | None:
        """Load ``archive`` into every server and return its ``model_id``.

        Raises:
            DeploymentError: A server could not load it (that server keeps its previous model).
        """
        expected = read_model_id(archive)
        for url in self.rasa_urls:
            try:
                response = httpx.put(f"{url}/model", params={"token": self._token},
                                     json={"model_file": str(Path(archive).resolve())}, timeout=self.timeout_s)
            except httpx.HTTPError as exc:
                raise DeploymentError(f"{url} unreachable: {exc.__class__.__name__}") from exc
            if response.status_code != 204:
                raise DeploymentError(f"{url} refused the model: HTTP {response.status_code} {response.text[:300]}")
            reported = self.serving().get(url)
            if expected is not None and reported != expected:
                raise DeploymentError(f"{url} reports model {reported}, expected {expected}")
        return expected
