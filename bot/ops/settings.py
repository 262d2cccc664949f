"""The few settings the operator commands need, read exactly as the bot reads them, no Slack ones.

`modbot audit export` and `modbot a2i setup` run on an operator's machine or in a one-off job,
where the Slack tokens and the alerts channel are not (and need not be) set. These classes take
their fields (names, aliases, defaults) and the DATABASE_URL check from `Settings` itself, so
they cannot drift from what `modbot serve` accepts.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode

from bot.adapters.database.engine import async_url
from bot.core.errors import ConfigError
from bot.settings import A2ITrigger, DetectorName, Network, Settings, _describe


def _as_in_settings(name: str) -> Any:
    """The bot's own field (alias, default, constraints), reused as is."""
    return Settings.model_fields[name]


class DatabaseSettings(BaseSettings):
    """DATABASE_URL only."""

    model_config = Settings.model_config

    database_url: str = _as_in_settings("database_url")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return Settings._database_url(value)  # the bot's own rule, whatever it becomes


class A2ISetupSettings(BaseSettings):
    """What `modbot a2i setup` reads besides its arguments: region, trigger, policy, S3 prefix."""

    model_config = Settings.model_config

    a2i_trigger: A2ITrigger = _as_in_settings("a2i_trigger")
    policy_file: str | None = _as_in_settings("policy_file")
    s3_prefix: str = _as_in_settings("s3_prefix")
    aws_region: str | None = _as_in_settings("aws_region")
    aws_default_region: str | None = _as_in_settings("aws_default_region")

    @property
    def region(self) -> str | None:
        """AWS_REGION, else AWS_DEFAULT_REGION, as the bot does."""
        return self.aws_region or self.aws_default_region


class ScanSettings(BaseSettings):
    """What `modbot scan` reads: the detector and its AWS region and rate, the policy, the
    download and decode limits, and the database its results are cached in. No Slack setting."""

    model_config = Settings.model_config

    detector: DetectorName = _as_in_settings("detector")
    policy_file: str | None = _as_in_settings("policy_file")
    rekognition_tps: float = _as_in_settings("rekognition_tps")
    max_download_bytes: int = _as_in_settings("max_download_bytes")
    decode_memory_mb: int = _as_in_settings("decode_memory_mb")
    link_timeout_seconds: float = _as_in_settings("link_timeout_seconds")
    allow_private_networks: Annotated[tuple[Network, ...], NoDecode] = _as_in_settings(
        "allow_private_networks"
    )
    aws_region: str | None = _as_in_settings("aws_region")
    aws_default_region: str | None = _as_in_settings("aws_default_region")
    database_url: str = _as_in_settings("database_url")

    @field_validator("allow_private_networks", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return Settings._csv(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return Settings._database_url(value)

    @property
    def region(self) -> str | None:
        return self.aws_region or self.aws_default_region

    @property
    def sqlalchemy_url(self) -> str:
        return async_url(self.database_url)


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load(cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build `cls` or raise ConfigError with one line per problem, naming the variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError([_describe(error) for error in exc.errors()]) from None
