"""Typed settings for every Switchboard process (gateway, action server, stack runner).

Values come from environment variables prefixed ``SWITCHBOARD_`` or from the project's ``.env``
file. Secrets have no default: the platform refuses to start without real ones.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Values people copy from examples; refusing them keeps a demo secret out of production.
_WEAK_SECRETS = {"changeme", "change-me", "secret", "password", "token", "default", "dev", "test"}
_MIN_SECRET_LENGTH = 24


def _check_secret(value: SecretStr, name: str) -> SecretStr:
    raw = value.get_secret_value()
    if raw.lower() in _WEAK_SECRETS or len(raw) < _MIN_SECRET_LENGTH:
        raise ValueError(
            f"{name} must be a random value of at least {_MIN_SECRET_LENGTH} characters "
            "(run `make env` to generate one into .env)"
        )
    return value


class Settings(BaseSettings):
    """All configuration of one Switchboard deployment.

    Attributes:
        secret_key: Signs conversation tokens. Required, never defaulted.
        rasa_token: Shared token between gateway and Rasa. Required, never defaulted.
        host: Interface the gateway binds to (and the address it prints).
        rasa_host: Where Rasa listens; private (127.0.0.1 natively, the service name in compose).
        actions_host: Where the action server listens; private like Rasa.
        gateway_port: Public port of the gateway (widget, API, pages).
        rasa_port: Rasa server port (private).
        actions_port: Action server port (private).
        database_url: SQLAlchemy URL of the gateway database (SQLite file by default).
        rasa_tracker_db: SQLite file of Rasa's SQL tracker store in the embedded default.
        models_dir: Where trained Rasa model archives live.
        model_name: Fixed name of the Rasa model archive (``<models_dir>/<model_name>.tar.gz``).
        model_registry_dir: Where the model registry keeps every bot version's archive (one folder per tenant).
        training_dir: Work folders of retraining runs (generated Rasa projects and training logs).
        refine_after_retrain: After a retraining's fast probe model, fine-tune on the same data and promote
            that model too when it passes the gate (API retrains; the CLI has ``--refine``).
        webhooks_allow_private: Let tenants' webhooks reach loopback, private and link-local addresses (an
            operator's choice for a private deployment; off: the gateway's own network is out of reach).
        rasa_agent_budget_mb: Memory one Rasa process may spend on tenants' agents together; beyond it the
            least recently used tenant's agent is dropped (and loaded again on its next turn).
        gate_tolerance: Largest drop of any held-out metric the evaluation gate lets a new model through with.
        broker_url: AMQP URL of the RabbitMQ Rasa's event broker publishes to (scale-out); the log
            consumer (``python -m gateway log-consumer``) reads it. Unset in the embedded default.
        broker_queue: The durable queue the log consumer reads (Rasa's ``event_broker.queues``).
        redis_url: Redis that gateway replicas share live events through (pub/sub); in-process when unset.
        rasa_replica_urls: Comma-separated private URLs of every Rasa replica (a new model is loaded into
            each); just ``rasa_url`` when unset.
        max_message_chars: Longest customer message accepted.
        max_body_bytes: Largest HTTP request body accepted.
        keep_alive_s: How long the gateway keeps an idle HTTP connection open for the client's next request.
            Longer than clients and load balancers keep theirs: with both at 5 s (uvicorn's and httpx's
            defaults), a client reusing a connection just as the server closed it got a reset.
        rasa_timeout_s: How long the gateway waits for one Rasa turn before the customer gets the honest
            "having trouble" reply (a hung Rasa or action server costs a customer at most this).
        rasa_max_in_flight: Turns one gateway process has in Rasa at once; more wait in the gateway (Rasa
            runs one turn at a time per process, so a longer queue there only adds timeouts).
        rasa_queue_timeout_s: How long a turn may wait for one of those places before the honest reply.
        demo_tenant: Slug of the tenant seeded for the demo page.
        demo_widget_key: Widget key of the demo tenant (generated into .env when absent).
        admin_token: Bearer token of the admin API and pages (knowledge base, later tenants and
            plans). The admin API is switched off while it is unset; weak values are refused.
        kb_dir: Where the per-tenant knowledge-base indexes live.
        kb_encoder: Local sentence-transformers / BERT folder for knowledge-base embeddings
            (the packaged all-MiniLM-L6-v2 when unset).
        kb_answer_threshold: Cosine similarity the best passage needs for the bot to answer from it.
        kb_max_file_bytes: Largest knowledge-base upload accepted.
        kb_help_centre: Folder of the default bot's help-centre articles (ingested by ``make run``).
        invoices_dir: Where period-close writes invoices (JSON, CSV) and Stripe meter-event files.
        rasa_tracker_url: SQLAlchemy URL of Rasa's tracker store when it is not the embedded SQLite
            file (PostgreSQL in production); erasure deletes a conversation's events there.
        retention_interval_s: How often the retention job erases conversations past their tenant's retention.
        agent_idle_minutes: An agent session unused this long expires.
        agent_session_hours: An agent session expires this long after login.
        secure_cookies: Mark session cookies Secure (set behind HTTPS).
        handoff_tick_s: How often queued handoffs are re-assigned, timed out and their positions updated.
        webhook_poll_s: How often due webhook deliveries are sent (transitions also send at once).
        demo_agent_password: Password of the demo tenant's agent (``agent@northwind.example``); no
            demo agent is created while it is unset. Weak values are refused.
        rate_conversation_per_min: Customer messages per minute one conversation may send (sustained).
        rate_conversation_burst: Customer messages one conversation may send at once.
        rate_ip_per_min: Customer messages per minute from one IP address, all conversations together.
        rate_ip_burst: Burst of customer messages from one IP address.
        rate_new_conversations_per_min: Conversations one IP address may start per minute.
        slack_signing_secret: Signing secret of the Slack app; Slack is off while it is unset.
        slack_client_id: OAuth client id of the Slack app (installs into several workspaces).
        slack_client_secret: OAuth client secret of the Slack app.
        slack_api_url: Base URL of the Slack Web API (a local fake in tests).
        slack_authorize_url: Slack's OAuth authorize page.
        slack_scopes: Bot scopes requested at install.
    """

    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_", env_file=PROJECT_ROOT / ".env", extra="ignore"
    )

    secret_key: SecretStr
    rasa_token: SecretStr
    host: str = "127.0.0.1"
    rasa_host: str = "127.0.0.1"
    actions_host: str = "127.0.0.1"
    gateway_port: int = 8000
    rasa_port: int = 5005
    actions_port: int = 5055
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'switchboard.db'}"
    rasa_tracker_db: Path = PROJECT_ROOT / "var" / "rasa_tracker.db"
    models_dir: Path = PROJECT_ROOT / "models"
    model_name: str = "northwind"
    model_registry_dir: Path = PROJECT_ROOT / "var" / "models"
    training_dir: Path = PROJECT_ROOT / "var" / "training"
    rasa_agent_budget_mb: float = Field(default=3072.0, gt=0)
    webhooks_allow_private: bool = False
    gate_tolerance: float = Field(default=0.02, ge=0.0, le=1.0)
    refine_after_retrain: bool = True
    broker_url: str | None = None
    broker_queue: str = "switchboard_events"
    redis_url: str | None = None
    rasa_replica_urls: str | None = None
    max_message_chars: int = Field(default=4000, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    keep_alive_s: int = Field(default=75, gt=0)
    rasa_timeout_s: float = Field(default=10.0, gt=0)
    rasa_max_in_flight: int = Field(default=8, gt=0)
    rasa_queue_timeout_s: float = Field(default=30.0, gt=0)
    demo_tenant: str = "northwind"
    demo_widget_key: str = "wk_demo_northwind"
    admin_token: SecretStr | None = None
    kb_dir: Path = PROJECT_ROOT / "var" / "kb"
    kb_encoder: str | None = None
    kb_answer_threshold: float = Field(default=0.42, ge=-1.0, le=1.0)
    kb_max_file_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    kb_help_centre: Path = PROJECT_ROOT / "knowledge_base" / "help_centre"
    invoices_dir: Path = PROJECT_ROOT / "var" / "invoices"
    rasa_tracker_url: str | None = None
    retention_interval_s: float = Field(default=3600.0, gt=0)
    agent_idle_minutes: int = Field(default=8 * 60, gt=0)
    agent_session_hours: int = Field(default=24, gt=0)
    secure_cookies: bool = False
    handoff_tick_s: float = Field(default=5.0, gt=0)
    webhook_poll_s: float = Field(default=2.0, gt=0)
    demo_agent_password: SecretStr | None = None
    rate_conversation_per_min: float = Field(default=30.0, gt=0)
    rate_conversation_burst: int = Field(default=10, gt=0)
    rate_ip_per_min: float = Field(default=120.0, gt=0)
    rate_ip_burst: int = Field(default=60, gt=0)
    rate_new_conversations_per_min: float = Field(default=20.0, gt=0)
    slack_signing_secret: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_authorize_url: str = "https://slack.com/oauth/v2/authorize"
    slack_scopes: str = "app_mentions:read,channels:history,chat:write,commands,im:history,im:read,im:write,users:read"

    @field_validator("secret_key")
    @classmethod
    def _secret_key_is_real(cls, value: SecretStr) -> SecretStr:
        return _check_secret(value, "SWITCHBOARD_SECRET_KEY")

    @field_validator("rasa_token")
    @classmethod
    def _rasa_token_is_real(cls, value: SecretStr) -> SecretStr:
        return _check_secret(value, "SWITCHBOARD_RASA_TOKEN")

    @field_validator("demo_agent_password")
    @classmethod
    def _demo_password_is_real(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from gateway.auth.passwords import check_password_strength

            check_password_strength(value.get_secret_value())
        return value

    # Optional values: an empty variable (compose writes `KEY: ${KEY:-}`) means "not set".
    @field_validator("demo_agent_password", "admin_token", "slack_signing_secret", "slack_client_secret",
                     "slack_client_id", "redis_url", "broker_url", "rasa_replica_urls", "rasa_tracker_url",
                     mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("admin_token")
    @classmethod
    def _admin_token_is_real(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else _check_secret(value, "SWITCHBOARD_ADMIN_TOKEN")

    @property
    def rasa_url(self) -> str:
        """Base URL of the private Rasa server."""
        return f"http://{self.rasa_host}:{self.rasa_port}"

    @property
    def actions_url(self) -> str:
        """Base URL of the private action server."""
        return f"http://{self.actions_host}:{self.actions_port}"

    @property
    def rasa_urls(self) -> list[str]:
        """Every Rasa replica (the one Rasa server of the embedded default)."""
        if self.rasa_replica_urls:
            return [u.strip().rstrip("/") for u in self.rasa_replica_urls.split(",") if u.strip()]
        return [self.rasa_url]

    @property
    def gateway_url(self) -> str:
        """Base URL of the public gateway."""
        return f"http://{self.host}:{self.gateway_port}"

    @property
    def tracker_store_url(self) -> str:
        """Where Rasa keeps its trackers."""
        return self.rasa_tracker_url or f"sqlite:///{self.rasa_tracker_db}"

    @property
    def model_path(self) -> Path:
        """Path of the Rasa model archive the stack serves."""
        return self.models_dir / f"{self.model_name}.tar.gz"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()  # type: ignore[call-arg]  # values come from the environment
