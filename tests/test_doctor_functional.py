"""`modbot doctor` against the stand-ins: every line passes on a correct set-up (made by
`modbot a2i setup`), and each broken part gives its own failing line with the fix."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml

from bot.__main__ import main
from bot.ops.doctor_slack import BOT_SCOPES
from tests.fakes.aws_recording_proxy import RecordingProxy
from tests.harness import ALERTS, REPO_ROOT, Stack, started_stack

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/modbot-a2i"
WORKTEAM = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:workteam/private-crowd/moderators"
ADMIN, ADMIN_TOKEN = "U0ADMIN", "xoxp-admin-token"


@dataclass
class Doctor:
    stack: Stack
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]
    moto_url: str
    bucket: str

    async def run(self) -> tuple[int, list[str]]:
        """`modbot doctor` in a thread (the stand-ins share this loop); its exit and lines."""
        self.capsys.readouterr()
        code = await asyncio.to_thread(main, ["doctor"])
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out.splitlines()

    def a2i_flow_arn(self) -> str:
        return os.environ["MODBOT_A2I_FLOW_DEFINITION_ARN"]

    async def a2i_setup(self, name: str) -> dict[str, str]:
        argv = ["a2i", "setup", "--role-arn", ROLE, "--workteam-arn", WORKTEAM]
        argv += ["--bucket", self.bucket, "--name", name]
        self.capsys.readouterr()
        code = await asyncio.to_thread(main, argv)
        out, err = self.capsys.readouterr()
        assert code == 0, err
        return dict(line.split("=", 1) for line in out.splitlines())


def _failures(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


@pytest.fixture
async def doctor(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_url: str,
    capsys: pytest.CaptureFixture[str],
) -> AsyncIterator[Doctor]:
    """A correct set-up: Socket Mode tokens, an admin token, the bot in the alerts channel,
    A2I made by `modbot a2i setup`, the database at head."""
    async with started_stack(tmp_path, monkeypatch, moto_url=moto_url) as stack:
        for service in ("SAGEMAKER",):
            monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", stack.aws.url)
        for service in ("STS", "EVENTBRIDGE"):
            monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_url)
        monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-test")
        monkeypatch.setenv("SLACK_ADMIN_TOKEN", ADMIN_TOKEN)
        stack.slack.add_user(ADMIN, admin=True)
        stack.slack.add_user_token(ADMIN_TOKEN, ADMIN, ["chat:write", "files:write"])
        stack.slack.add_channel(ALERTS, name="mod-alerts", is_member=True)
        bucket = f"modbot-doctor-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket)
        doctor = Doctor(stack, monkeypatch, capsys, moto_url, bucket)
        for key, value in (await doctor.a2i_setup(f"d{uuid.uuid4().hex[:8]}")).items():
            monkeypatch.setenv(key, value)
        assert await asyncio.to_thread(main, ["db", "upgrade"]) == 0
        yield doctor


async def test_a_correct_setup_passes_every_check(doctor: Doctor) -> None:
    """Exit 0, no failing line, and a passing line for each part §13 lists; the Rekognition
    check is one call with a non-image, refused as such (no image analysed, nothing billed)."""
    calls_before = len(doctor.stack.aws.calls)
    code, lines = await doctor.run()
    assert code == 0, lines
    assert _failures(lines) == []
    passed = {
        line.split(":", 1)[0].removeprefix("ok").strip() for line in lines if line[:2] == "ok"
    }
    assert passed >= {
        "settings",
        "transport",
        "policy",
        "Slack bot token",
        "Slack scopes",
        "alerts channel",
        "app-level token",
        "admin token",
        "AWS credentials",
        "Rekognition",
        "A2I flow definition",
        "S3 bucket",
        "S3 CORS",
        "A2I events queue",
        "database",
    }
    assert lines[-1] == "every check passed"
    [probe] = doctor.stack.aws.calls[calls_before:]
    assert probe.error == "InvalidImageFormatException"


async def test_a_missing_scope_is_named(doctor: Doctor) -> None:
    """The token lacks files:read (x-oauth-scopes): that line fails naming it; exit 1."""
    doctor.stack.slack.scopes.remove("files:read")
    code, lines = await doctor.run()
    assert code == 1
    [line] = _failures(lines)
    assert line.startswith("FAIL  Slack scopes: the bot token lacks files:read: add it under")


async def test_a_bot_outside_the_alerts_channel_is_told_to_invite_it(doctor: Doctor) -> None:
    """conversations.info says is_member false: the fix is /invite in that channel."""
    doctor.stack.slack.add_channel(ALERTS, name="mod-alerts", is_member=False)
    code, lines = await doctor.run()
    assert code == 1
    assert _failures(lines) == [
        f"FAIL  alerts channel: the bot is not a member of #mod-alerts ({ALERTS}): /invite "
        "@modbot in that channel"
    ]


async def test_a_wrong_bucket_fails_the_bucket_line(doctor: Doctor) -> None:
    """A bucket that does not exist: named, with the setting to check."""
    doctor.monkeypatch.setenv("MODBOT_S3_BUCKET", "no-such-modbot-bucket")
    code, lines = await doctor.run()
    assert code == 1
    assert _failures(lines) == [
        "FAIL  S3 bucket: bucket no-such-modbot-bucket does not exist: check MODBOT_S3_BUCKET"
    ]


async def test_a_bucket_without_cors_fails_the_cors_line(doctor: Doctor) -> None:
    """The worker page needs GET from any origin: its absence is its own line."""
    s3 = boto3.client(
        "s3",
        endpoint_url=doctor.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.delete_bucket_cors(Bucket=doctor.bucket)
    code, lines = await doctor.run()
    assert code == 1
    [line] = _failures(lines)
    assert line.startswith(f"FAIL  S3 CORS: {doctor.bucket} has no CORS rule allowing GET")


async def test_flow_conditions_under_the_policy_trigger_are_refused(doctor: Doctor) -> None:
    """A flow definition made for the `flow` trigger (with conditions) used with
    MODBOT_A2I_TRIGGER=policy: A2I would skip loops the bot asks for. Named, with the fix."""
    doctor.monkeypatch.setenv("MODBOT_A2I_TRIGGER", "flow")
    name = f"f{uuid.uuid4().hex[:8]}"
    policy_flow = doctor.a2i_flow_arn()
    code, lines = await doctor.run()
    assert code == 1  # the set-up's flow has no conditions: wrong for `flow`
    [line] = _failures(lines)
    assert "it has no activation conditions, but MODBOT_A2I_TRIGGER=flow needs them" in line
    flow_arn = (await doctor.a2i_setup(name))["MODBOT_A2I_FLOW_DEFINITION_ARN"]
    assert flow_arn != policy_flow
    doctor.monkeypatch.setenv("MODBOT_A2I_FLOW_DEFINITION_ARN", flow_arn)
    code, lines = await doctor.run()
    assert code == 0, lines  # made for `flow`, used under `flow`: right
    doctor.monkeypatch.setenv("MODBOT_A2I_TRIGGER", "policy")
    code, lines = await doctor.run()
    assert code == 1
    [line] = _failures(lines)
    assert line.startswith(
        f"FAIL  A2I flow definition: {name}-review: it has activation conditions, but "
        "MODBOT_A2I_TRIGGER=policy needs none"
    )


async def test_an_unreachable_database_is_named_with_its_url_masked(doctor: Doctor) -> None:
    """Nothing listens at the PostgreSQL address: the line names it, password hidden."""
    doctor.monkeypatch.setenv("DATABASE_URL", "postgresql://modbot:secret@127.0.0.1:1/modbot")
    code, lines = await doctor.run()
    assert code == 1
    [line] = _failures(lines)
    assert line.startswith(
        "FAIL  database: cannot use the database at postgresql://modbot:***@127.0.0.1:1/modbot ("
    )
    assert "secret" not in "\n".join(lines)


async def test_denied_rekognition_and_a_non_admin_token_fail_their_lines(doctor: Doctor) -> None:
    """Credentials without rekognition:DetectModerationLabels, and an admin token of somebody
    who is not a workspace Admin: each its own line with the fix."""
    proxy = RecordingProxy(doctor.stack.aws.url, deny=frozenset({"DetectModerationLabels"}))
    await proxy.start()
    try:
        doctor.monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", proxy.url)
        doctor.stack.slack.add_user(ADMIN, admin=False)
        code, lines = await doctor.run()
    finally:
        await proxy.close()
    assert code == 1
    failures = _failures(lines)
    assert (
        "FAIL  Rekognition: AccessDeniedException: allow rekognition:DetectModerationLabels"
        in (failures[1])
    )
    assert failures[0].startswith(
        f"FAIL  admin token: <@{ADMIN}> is not a workspace Owner or Admin"
    )


async def test_nothing_configured_names_every_missing_part(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty environment: the Slack tokens, the alerts channel, the transport and AWS are
    each named; no traceback; no database file created; exit 1."""
    code = main(["doctor"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    failures = "\n".join(line for line in out.splitlines() if line.startswith("FAIL"))
    for missing in (
        "SLACK_BOT_TOKEN: required but not set",
        "MODBOT_ALERT_CHANNEL: required but not set",
        "set SLACK_APP_TOKEN (Socket Mode, the manifest's default) or SLACK_SIGNING_SECRET",
        "AWS_REGION: required but not set",
        "AWS credentials: none found",
    ):
        assert missing in failures
    assert not (tmp_path / "modbot.db").exists()


def test_doctor_wants_the_scopes_the_manifest_asks_for() -> None:
    """BOT_SCOPES (what doctor compares x-oauth-scopes with) is manifest.yaml's list."""
    manifest = yaml.safe_load((REPO_ROOT / "manifest.yaml").read_text(encoding="utf-8"))
    assert tuple(manifest["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES


async def test_hma_is_checked_when_configured(doctor: Doctor) -> None:
    """MODBOT_HMA_URL answering GET /status: ok; nothing listening there: its own failing line."""
    doctor.stack.web.add("/hma/status", b"I-AM-ALIVE", content_type="text/plain")
    doctor.monkeypatch.setenv("MODBOT_HMA_URL", f"{doctor.stack.web.url}/hma")
    code, lines = await doctor.run()
    assert code == 0, lines
    assert f"ok    HMA: {doctor.stack.web.url}/hma/status answered 200" in lines
    doctor.monkeypatch.setenv("MODBOT_HMA_URL", "http://127.0.0.1:1/")
    code, lines = await doctor.run()
    assert code == 1
    [line] = _failures(lines)
    assert line.startswith("FAIL  HMA: http://127.0.0.1:1/status unreachable (")
