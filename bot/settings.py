"""Every setting modbot reads, from the environment or a `.env` file, validated once at start."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from bot.adapters.database.engine import async_url, masked
from bot.adapters.hma import HmaConfig
from bot.adapters.http_limits import HttpLimits
from bot.core.errors import ConfigError
from bot.core.pdq import DEFAULT_MATCH_DISTANCE
from bot.core.retry import RetryPolicy

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ReviewBackendName(StrEnum):
    SLACK = "slack"
    A2I = "a2i"
    NONE = "none"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class DetectorName(StrEnum):
    REKOGNITION = "rekognition"
    NUDENET = "nudenet"


class A2ITrigger(StrEnum):
    POLICY = "policy"
    FLOW = "flow"


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """PRODUCT §7 settings table. Names are a contract with operators: keep them exactly."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    slack_bot_token: SecretStr = Field(alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    # An Owner's or Admin's user token: only for files.delete / chat.delete (PRODUCT §10).
    slack_admin_token: SecretStr | None = Field(None, alias="SLACK_ADMIN_TOKEN")
    notify_poster: bool = Field(False, alias="MODBOT_NOTIFY_POSTER")

    alert_channel: str = Field(alias="MODBOT_ALERT_CHANNEL")
    watch_channels: Annotated[tuple[str, ...], NoDecode] = Field((), alias="MODBOT_WATCH_CHANNELS")
    policy_file: str | None = Field(None, alias="MODBOT_POLICY_FILE")

    review_backend: ReviewBackendName = Field(
        ReviewBackendName.SLACK, alias="MODBOT_REVIEW_BACKEND"
    )
    review_quorum: int = Field(1, ge=1, le=25, alias="MODBOT_REVIEW_QUORUM")
    reviewers: Annotated[tuple[str, ...], NoDecode] = Field((), alias="MODBOT_REVIEWERS")
    review_remind_minutes: float = Field(60, gt=0, alias="MODBOT_REVIEW_REMIND_MINUTES")

    a2i_flow_definition_arn: str | None = Field(None, alias="MODBOT_A2I_FLOW_DEFINITION_ARN")
    a2i_trigger: A2ITrigger = Field(A2ITrigger.POLICY, alias="MODBOT_A2I_TRIGGER")
    s3_bucket: str | None = Field(None, alias="MODBOT_S3_BUCKET")
    s3_prefix: str = Field("modbot/", alias="MODBOT_S3_PREFIX")
    aws_region: str | None = Field(None, alias="AWS_REGION")
    aws_default_region: str | None = Field(None, alias="AWS_DEFAULT_REGION")
    a2i_events_queue_url: str | None = Field(None, alias="MODBOT_A2I_EVENTS_QUEUE_URL")
    a2i_poll_seconds: float = Field(60, gt=0, alias="MODBOT_A2I_POLL_SECONDS")

    detector: DetectorName = Field(DetectorName.REKOGNITION, alias="MODBOT_DETECTOR")
    rekognition_tps: float = Field(5, gt=0, le=1000, alias="MODBOT_REKOGNITION_TPS")
    max_download_bytes: int = Field(26_214_400, gt=0, alias="MODBOT_MAX_DOWNLOAD_BYTES")
    decode_memory_mb: int = Field(256, ge=16, le=1_048_576, alias="MODBOT_DECODE_MEMORY_MB")
    link_timeout_seconds: float = Field(15, gt=0, le=600, alias="MODBOT_LINK_TIMEOUT_SECONDS")
    note_interval_seconds: float = Field(5, ge=0, le=3600, alias="MODBOT_NOTE_INTERVAL_SECONDS")
    allow_private_networks: Annotated[tuple[Network, ...], NoDecode] = Field(
        (), alias="MODBOT_ALLOW_PRIVATE_NETWORKS"
    )

    shutdown_grace_seconds: float = Field(20, ge=0, le=600, alias="MODBOT_SHUTDOWN_GRACE_SECONDS")
    retry_limit_seconds: float = Field(3600, gt=0, alias="MODBOT_RETRY_LIMIT_SECONDS")
    retry_max_delay_seconds: float = Field(60, gt=0, alias="MODBOT_RETRY_MAX_DELAY_SECONDS")

    http_header_timeout_seconds: float = Field(
        10, gt=0, le=600, alias="MODBOT_HTTP_HEADER_TIMEOUT_SECONDS"
    )
    http_body_timeout_seconds: float = Field(
        10, gt=0, le=600, alias="MODBOT_HTTP_BODY_TIMEOUT_SECONDS"
    )
    http_max_body_bytes: int = Field(1_048_576, ge=1024, alias="MODBOT_HTTP_MAX_BODY_BYTES")
    http_max_connections: int = Field(256, ge=1, alias="MODBOT_HTTP_MAX_CONNECTIONS")

    match_distance: int = Field(DEFAULT_MATCH_DISTANCE, ge=0, le=63, alias="MODBOT_MATCH_DISTANCE")
    bank_refresh_seconds: float = Field(2, gt=0, le=3600, alias="MODBOT_BANK_REFRESH_SECONDS")
    hma_url: str | None = Field(None, alias="MODBOT_HMA_URL")
    hma_banks: Annotated[tuple[str, ...], NoDecode] = Field((), alias="MODBOT_HMA_BANKS")
    hma_push_bank: str | None = Field(None, alias="MODBOT_HMA_PUSH_BANK")
    hma_token: SecretStr | None = Field(None, alias="MODBOT_HMA_TOKEN")
    hma_auth_header: str = Field("Authorization", min_length=1, alias="MODBOT_HMA_AUTH_HEADER")
    hma_timeout_seconds: float = Field(2, gt=0, le=60, alias="MODBOT_HMA_TIMEOUT_SECONDS")

    database_url: str = Field("sqlite:///modbot.db", alias="DATABASE_URL")
    retention_days: int = Field(90, ge=1, le=36_500, alias="MODBOT_RETENTION_DAYS")
    # How long work a replica took stays its own without a heartbeat (PRODUCT §9).
    lease_seconds: float = Field(60, ge=1, le=3600, alias="MODBOT_LEASE_SECONDS")
    port: int = Field(3000, ge=1, le=65535, alias="PORT")
    log_format: LogFormat = Field(LogFormat.TEXT, alias="MODBOT_LOG_FORMAT")

    @field_validator(
        "watch_channels", "reviewers", "allow_private_networks", "hma_banks", mode="before"
    )
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("slack_admin_token")
    @classmethod
    def _admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and not value.get_secret_value().startswith("xoxp-"):
            raise ValueError("must be a user token starting with xoxp- (an Owner's or Admin's)")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return _check_database_url(value)

    @field_validator("hma_url")
    @classmethod
    def _hma_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://hma.internal:5000")
        return value

    @model_validator(mode="after")
    def _hma_needs_url(self) -> Settings:
        if (self.hma_banks or self.hma_push_bank) and not self.hma_url:
            wanted = "MODBOT_HMA_BANKS" if self.hma_banks else "MODBOT_HMA_PUSH_BANK"
            raise ValueError(f"{wanted} needs MODBOT_HMA_URL")
        return self

    @model_validator(mode="after")
    def _a2i_needs(self) -> Settings:
        if self.review_backend is ReviewBackendName.A2I and (
            self.detector is not DetectorName.REKOGNITION
        ):
            # A2I opens its human loops through Rekognition's own call: no other detector can.
            raise ValueError(
                f"MODBOT_REVIEW_BACKEND=a2i requires MODBOT_DETECTOR=rekognition "
                f"(MODBOT_DETECTOR is {self.detector.value})"
            )
        if self.review_backend is ReviewBackendName.A2I:
            missing = [
                name
                for name, value in (
                    ("MODBOT_A2I_FLOW_DEFINITION_ARN", self.a2i_flow_definition_arn),
                    ("MODBOT_S3_BUCKET", self.s3_bucket),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"MODBOT_REVIEW_BACKEND=a2i needs {' and '.join(missing)}")
        return self

    @property
    def retry(self) -> RetryPolicy:
        """How long transient failures are retried before they are reported."""
        base = min(1.0, self.retry_max_delay_seconds)
        return RetryPolicy(
            limit=self.retry_limit_seconds, base=base, cap=self.retry_max_delay_seconds
        )

    @property
    def hma(self) -> HmaConfig | None:
        """The HMA partner (PRODUCT §11), when MODBOT_HMA_URL is set."""
        if not self.hma_url:
            return None
        return HmaConfig(
            url=self.hma_url,
            banks=self.hma_banks,
            push_bank=self.hma_push_bank or None,
            auth_header=self.hma_auth_header,
            token=self.hma_token.get_secret_value() if self.hma_token else None,
            timeout=self.hma_timeout_seconds,
        )

    @property
    def decode_memory_bytes(self) -> int:
        return self.decode_memory_mb * 1024 * 1024

    @property
    def http_limits(self) -> HttpLimits:
        """What a client of the bot's own HTTP port may hold (bot/adapters/http_server.py)."""
        return HttpLimits(
            header_seconds=self.http_header_timeout_seconds,
            body_seconds=self.http_body_timeout_seconds,
            max_body_bytes=self.http_max_body_bytes,
            max_connections=self.http_max_connections,
        )

    @property
    def region(self) -> str | None:
        """AWS_REGION, else AWS_DEFAULT_REGION (botocore itself only reads the latter)."""
        return self.aws_region or self.aws_default_region

    @property
    def slack_api_origin(self) -> str:
        parts = urlsplit(self.slack_api_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def sqlalchemy_url(self) -> str:
        """The async driver URL for DATABASE_URL."""
        return async_url(self.database_url)


class DatabaseSettings(BaseSettings):
    """DATABASE_URL alone, for `modbot db ...`: migrating needs no Slack or AWS settings."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    database_url: str = Field("sqlite:///modbot.db", alias="DATABASE_URL")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return _check_database_url(value)

    @property
    def sqlalchemy_url(self) -> str:
        return async_url(self.database_url)


def _check_database_url(value: str) -> str:
    try:
        make_url(async_url(value))
    except ArgumentError:
        raise ValueError(f"cannot read {masked(value)} as a database URL") from None
    return value


class _Region(BaseSettings):
    """The AWS region alone, read like Settings reads it, for when other settings are bad."""

    model_config = Settings.model_config

    aws_region: str | None = Field(default=None, alias="AWS_REGION")
    aws_default_region: str | None = Field(default=None, alias="AWS_DEFAULT_REGION")


def load_region() -> str | None:
    """AWS_REGION, else AWS_DEFAULT_REGION (environment or `.env`), whatever else is set."""
    region = _Region()
    return region.aws_region or region.aws_default_region


def _same_as_in_settings(name: str) -> Any:
    """Settings' own field (alias, default, constraints), so a narrow class cannot drift."""
    return Settings.model_fields[name]


class _PolicyFile(BaseSettings):
    """MODBOT_POLICY_FILE alone, read like Settings reads it, for the `policy` commands."""

    model_config = Settings.model_config

    policy_file: str | None = _same_as_in_settings("policy_file")


def load_policy_file() -> str | None:
    """MODBOT_POLICY_FILE (environment or `.env`), whatever else is set or missing."""
    return _PolicyFile().policy_file


def removal_problems(settings: Settings, policy: Any) -> list[str]:
    """A policy that removes images needs SLACK_ADMIN_TOKEN: one line naming both."""
    if getattr(policy, "asks_removal", False) and settings.slack_admin_token is None:
        where = settings.policy_file or "the policy"
        return [
            f"MODBOT_POLICY_FILE: {where} asks for removal (remove = on_violation or on_flag) "
            "but SLACK_ADMIN_TOKEN is not set"
        ]
    return []


def load_settings(**overrides: Any) -> Settings:
    """Build Settings or raise ConfigError with one line per problem, naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError([_describe(error) for error in exc.errors()]) from None


def load_database_settings(**overrides: Any) -> DatabaseSettings:
    try:
        return DatabaseSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError([_describe(error) for error in exc.errors()]) from None


def _describe(error: Any) -> str:
    loc = error.get("loc") or ()
    name = str(loc[0]) if loc else "settings"
    field = Settings.model_fields.get(name)
    variable = field.alias if field is not None and field.alias else name
    if error.get("type") == "missing":
        return f"{variable}: required but not set"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if not loc:
        return message
    return f"{variable}: {message}"
