"""What one `modbot doctor` check reports, and the settings it reads (leniently: never fails)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from bot.settings import Settings


class Status(StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"  # not configured, or nothing to check until an earlier failure is fixed


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, and what was found or what to fix."""

    name: str
    status: Status
    detail: str

    @property
    def line(self) -> str:
        return f"{self.status.value:<4}  {self.name}: {self.detail}"


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def fail(name: str, detail: str) -> Check:
    return Check(name, Status.FAIL, detail)


def skip(name: str, detail: str) -> Check:
    return Check(name, Status.SKIP, detail)


def _text(alias: str) -> str | None:
    return Field(None, alias=alias)


class DoctorSettings(BaseSettings):
    """Every value the checks need, each read on its own as text: one bad setting (reported by
    the settings check) must not hide the checks of the others."""

    model_config = Settings.model_config

    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    # Optional (PRODUCT §10): removals use it; read here by its environment name.
    slack_admin_token: SecretStr | None = Field(None, alias="SLACK_ADMIN_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    alert_channel: str | None = _text("MODBOT_ALERT_CHANNEL")
    policy_file: str | None = _text("MODBOT_POLICY_FILE")
    review_backend: str = Field("slack", alias="MODBOT_REVIEW_BACKEND")
    detector: str = Field("rekognition", alias="MODBOT_DETECTOR")
    a2i_flow_definition_arn: str | None = _text("MODBOT_A2I_FLOW_DEFINITION_ARN")
    a2i_trigger: str = Field("policy", alias="MODBOT_A2I_TRIGGER")
    s3_bucket: str | None = _text("MODBOT_S3_BUCKET")
    a2i_events_queue_url: str | None = _text("MODBOT_A2I_EVENTS_QUEUE_URL")
    aws_region: str | None = _text("AWS_REGION")
    aws_default_region: str | None = _text("AWS_DEFAULT_REGION")
    database_url: str = Field("sqlite:///modbot.db", alias="DATABASE_URL")
    hma_url: str | None = _text("MODBOT_HMA_URL")

    @property
    def region(self) -> str | None:
        return self.aws_region or self.aws_default_region

    @property
    def uses_a2i(self) -> bool:
        return self.review_backend.strip().lower() == "a2i"

    @property
    def uses_rekognition(self) -> bool:
        return self.detector.strip().lower() != "nudenet"
