"""Settings from environment variables (``CENTRALITA_*``), with embedded defaults.

No variables set: a SQLite file under ``./var/`` and the in-process broker, so a fresh clone
runs with no server installed.  ``CENTRALITA_DATABASE_URL=postgresql+asyncpg://…`` and
``CENTRALITA_BROKER_URL=amqp://…`` switch to PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


ROLES = ("pipeline", "router", "outbound", "followups", "config", "retention")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CENTRALITA_", extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///./var/centralita.db"
    broker_url: str = "memory://"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    environment: Literal["development", "production", "test"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "console", "json"] = "auto"

    # Broker layout
    ingest_partitions: int = Field(default=4, ge=1, le=256)
    # How many batches a pipeline process commits at once; partition p feeds lane p % lanes.
    pipeline_lanes: int = Field(default=1, ge=1, le=256)
    broker_prefix: str = ""  # prefixes every exchange and queue (tests use a unique one)
    broker_connect_attempts: int = Field(default=3, ge=1, le=100)
    broker_ephemeral: bool = False  # delete every queue this process declared when it stops (tests)
    broker_quorum: bool = True  # durable queues as quorum queues (production); tests may say False
    # Backpressure: at most this many messages waiting per ingest partition; past it webhooks
    # answer 503 + Retry-After (RabbitMQ x-max-length, reject-publish).  None: unbounded.  A queue's
    # bound is fixed when it is first declared: changing it on RabbitMQ means deleting the queue
    # (or a policy), or the declare fails with a conflict.
    ingest_max_backlog: int | None = Field(default=None, ge=1)
    retry_after_s: int = Field(default=5, ge=1, le=3600)  # Retry-After of every 503
    # Slow clients: a connection must send its first request's headers, and a handler must
    # receive the request body, within these (HTTP 408 / connection closed).
    http_header_timeout_s: float = Field(default=10.0, gt=0, le=600)
    http_body_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    # A developer's aid (the test suite turns it on): every JSON response is checked against the
    # OpenAPI document's schema for its route and status; a mismatch is logged, recorded and
    # answered 500 instead (centralita/web/response_check.py).
    check_responses: bool = False
    # GET /metrics (Prometheus, docs/metrics.md): with metrics_token set, only a request bearing
    # it (Authorization: Bearer <token>) is answered, any other 401; without a token it is served
    # to anyone who reaches the port only when metrics_public says so, otherwise it answers 404.
    metrics_token: SecretStr | None = None
    metrics_public: bool = False

    # API tokens (storage/tokens.py): a token issued without an expiry (CLI --expires-in, API
    # expires_in) lives its role's lifetime, and none longer than token_max_lifetime_s.  Tokens
    # issued before expiries existed (expires_at NULL) work until they are revoked.  A gateway
    # re-reads the tokens of its open sockets every token_recheck_s and closes the refused ones;
    # a token's last-used time is written at most once per token_touch_s.
    token_lifetime_agent_s: float = Field(default=30 * 86400.0, gt=0)
    token_lifetime_supervisor_s: float = Field(default=30 * 86400.0, gt=0)
    token_lifetime_admin_s: float = Field(default=7 * 86400.0, gt=0)
    token_max_lifetime_s: float = Field(default=366 * 86400.0, gt=0)
    token_recheck_s: float = Field(default=5.0, gt=0, le=600)
    token_touch_s: float = Field(default=60.0, ge=0, le=86400)

    # The supervisors' wall socket (/ws/supervisor, centralita/web/wall.py): every wall_push_s
    # the server re-reads the figures of each workspace a wall watches and sends what changed.
    wall_push_s: float = Field(default=1.0, gt=0, le=60)

    # The console's sign-in (centralita/web/signin.py): a signed-in browser holds a session token
    # (an api_token of kind "session") in an HttpOnly, SameSite=Strict cookie.  It is refused
    # after session_absolute_s from sign-in, or once unused for session_idle_s (an open socket
    # counts as use).  More than sign_in_max_failures refused sign-ins for one email (or ten
    # times as many from one address) within sign_in_window_s answer 429 until the window
    # passes.  An invitation link works once, within invitation_lifetime_s.  public_url: the
    # console's address in invitation links (default: the server's host and port).
    session_idle_s: float = Field(default=8 * 3600.0, gt=0)
    session_absolute_s: float = Field(default=12 * 3600.0, gt=0)
    sign_in_max_failures: int = Field(default=5, ge=1, le=1000)
    sign_in_window_s: float = Field(default=900.0, gt=0, le=86400)
    invitation_lifetime_s: float = Field(default=7 * 86400.0, gt=0, le=90 * 86400)
    public_url: str | None = None

    # Customers' media (centralita/media.py): fetched from the provider into media_dir, at most
    # media_max_bytes each; the worker looks for due fetches every media_poll_s and tries a
    # fetch media_attempts times, media_retry_s apart and doubling, before it marks it failed.
    media_dir: str = "./var/media"
    media_max_bytes: int = Field(default=25_000_000, ge=1)
    media_poll_s: float = Field(default=1.0, gt=0, le=600)
    media_attempts: int = Field(default=6, ge=1, le=100)
    media_retry_s: float = Field(default=5.0, gt=0, le=3600)
    # An agent's upload (POST /api/conversations/{id}/attachments): at most this many bytes, and
    # never more than the conversation's channel takes for the file's type.
    media_upload_max_bytes: int = Field(default=16_000_000, ge=1)

    # Channels
    graph_base_url: str = "https://graph.facebook.com"
    graph_version: str = "v21.0"
    smtp_listen_host: str = "127.0.0.1"
    smtp_listen_port: int = 0  # 0: no SMTP listener
    smtp_relay_host: str = "127.0.0.1"
    smtp_relay_port: int = 25
    email_webhook_token: str | None = None
    max_webhook_bytes: int = 1_048_576
    # Sending: attempts inside the adapter (tenacity, exponential backoff), then the outbound
    # worker's own attempts after the adapter gave up on a transient failure.
    send_retries: int = Field(default=4, ge=1, le=20)
    send_retry_initial_s: float = Field(default=0.5, ge=0.0, le=60.0)
    send_retry_max_s: float = Field(default=8.0, ge=0.0, le=600.0)
    outbound_attempts: int = Field(default=3, ge=1, le=50)
    # The outbox: the outbound worker claims due queued replies every outbound_poll_s (at once
    # when nudged); a transient failure is due again after outbound_retry_s * 2^(attempt-1); a
    # reply left "sending" by a worker that stopped renewing it for outbound_lease_s is "unknown".
    outbound_poll_s: float = Field(default=1.0, gt=0, le=3600)
    outbound_retry_s: float = Field(default=1.0, ge=0, le=3600)
    outbound_lease_s: float = Field(default=60.0, gt=0, le=86400)

    # Identity
    identity_default_region: str = "MX"  # country of numbers written in national format (ISO 3166)

    # Workers
    run_workers: bool = True  # serve also runs pipeline, router and outbound workers
    # Which workers this process runs (comma-separated, or "all"): pipeline, router, outbound,
    # followups, config, retention.  Several processes with different roles share the load on more cores
    # (e.g. one "router,config" process beside "pipeline,outbound,followups,config" ones).
    roles: str = "all"
    offer_timeout_s: float = 30.0
    # Safety net of live reload: how often a server compares campaign versions with the database.
    config_poll_s: float = Field(default=5.0, gt=0, le=3600)
    # Retention (the "retention" role, centralita/retention.py): a pass over every campaign's
    # manifest retention every retention_interval_s, at most retention_batch rows per statement.
    retention_interval_s: float = Field(default=3600.0, gt=0, le=86400 * 7)
    retention_batch: int = Field(default=1000, ge=1, le=100_000)

    # Router (router.service): the policy's knobs, and the live service's own periods.
    router_selection: Literal["longest_idle", "least_loaded"] = "longest_idle"
    router_disconnect_grace_s: float = Field(default=60.0, ge=0)
    # Presence leases: a gateway renews the lease of the agents whose sockets it holds every
    # presence_renew_s; an agent whose lease is presence_lease_s old (its gateway died) goes offline.
    presence_lease_s: float = Field(default=30.0, gt=0, le=3600)
    presence_renew_s: float = Field(default=5.0, gt=0, le=600)
    router_requeue_on_offline: bool = True
    router_sticky_wait_s: float = Field(default=30.0, ge=0)
    router_transfer_wait_s: float = Field(default=30.0, ge=0)
    router_wrap_up_s: float = Field(default=0.0, ge=0)
    router_ramp_period_s: float = Field(default=120.0, ge=0)
    router_ramp_interval_s: float = Field(default=20.0, ge=0)
    router_resync_s: float = Field(default=15.0, gt=0, le=3600)  # re-read open conversations
    router_stats_interval_s: float = Field(default=5.0, gt=0, le=3600)  # ws.<ws>.queue.stats events
    router_scan_s: float = Field(default=30.0, gt=0, le=3600)  # look for new workspaces
    router_batch_max: int = Field(default=500, ge=1, le=10_000)  # inputs handled per transaction
    # The agent holding a conversation is warned this long before its reply window closes
    # (a ``window_warning`` frame on /ws/agent), once per window; 0: no warning.
    window_warning_s: float = Field(default=3600.0, ge=0, le=86400)

    # Webhooks out (docs/integrations.md; the ``outbound`` role delivers them): a failed attempt
    # is tried again after exponential backoff with jitter (webhook_retry_initial_s doubling, at
    # most webhook_retry_max_s) until webhook_give_up_s after the event; an endpoint failing for
    # webhook_pause_after_s is paused with an alert.  webhooks_allow_private: allow http and
    # private, link-local and loopback destinations (tests, labs).
    webhooks_allow_private: bool = False
    webhook_poll_s: float = Field(default=1.0, gt=0, le=3600)
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=300)
    webhook_lease_s: float = Field(default=60.0, gt=0, le=3600)
    webhook_retry_initial_s: float = Field(default=5.0, gt=0, le=3600)
    webhook_retry_max_s: float = Field(default=3600.0, gt=0, le=86400)
    webhook_give_up_s: float = Field(default=86400.0, gt=0, le=7 * 86400)
    webhook_pause_after_s: float = Field(default=6 * 3600.0, gt=0, le=7 * 86400)

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: str) -> str:
        unknown = {r.strip() for r in value.split(",")} - {"all", *ROLES}
        if unknown:
            raise ValueError(f"unknown role(s) {', '.join(sorted(unknown))}; known: all, {', '.join(ROLES)}")
        return value

    def runs(self, role: str) -> bool:
        """Whether this process runs the ``role`` worker (see ``roles``)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if not self.run_workers:
            return False
        chosen = {r.strip() for r in self.roles.split(",")}
        return "all" in chosen or role in chosen

    def token_lifetime(self, role: str) -> timedelta:
        """How long a token of ``role`` lives when issued without an expiry."""
        seconds = {
            "agent": self.token_lifetime_agent_s,
            "supervisor": self.token_lifetime_supervisor_s,
            "admin": self.token_lifetime_admin_s,
        }.get(role)
        if seconds is None:
            raise ValueError(f"unknown token role {role!r}")
        return timedelta(seconds=seconds)

    @property
    def uses_memory_broker(self) -> bool:
        return self.broker_url.startswith("memory:")

    def redacted_database_url(self) -> str:
        return _redact_password(self.database_url)

    def redacted_broker_url(self) -> str:
        return _redact_password(self.broker_url)


def _redact_password(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}" if user else f"{scheme}://{host}"
