"""The policy as the running bot applies it: carve-outs, channel modes, watched channels."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fakes import slack_payloads as payloads
from tests.harness import GENERAL, POSTER, REPO_ROOT, REVIEW_COLOR, Bot, Stack, http_bot

POLICY = """
[defaults]
review = 50
flag = 90

[labels."Explicit"]
review = 40
flag = 80

[labels."Exposed Male Nipple"]
action = "ignore"

[channels.C0SHADOW]
mode = "shadow"

[channels.C0OFF]
mode = "off"
"""
CARVED = (90, 90, 90)  # scripted: Exposed Male Nipple only
STRICT = (150, 60, 150)  # scripted: Exposed Buttocks or Anus at 45 (review under the L1 rule)


@pytest.fixture
def policy_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    path = stack.tmp / "policy.toml"
    path.write_text(POLICY)
    monkeypatch.setenv("MODBOT_POLICY_FILE", str(path))
    stack.aws.script(CARVED, {"Exposed Male Nipple": 95.0})
    stack.aws.script(STRICT, {"Exposed Buttocks or Anus": 45.0})
    return stack


async def _post(bot: Bot, stack: Stack, color: tuple[int, int, int], channel: str) -> None:
    file = stack.upload(color, channel=channel, name=f"{channel}-{color[0]}.png")
    await bot.event(payloads.message_event(channel, POSTER, files=[file]))
    await bot.idle()


async def test_l3_carve_out_and_stricter_l1_apply(policy_env: Stack) -> None:
    """An ignored L3 under a strict L1 gives no alert; 45% under the L1's review=40 does."""
    async with http_bot(policy_env) as bot:
        await _post(bot, policy_env, CARVED, GENERAL)
        assert policy_env.alerts() == []
        await _post(bot, policy_env, STRICT, GENERAL)
    [alert] = policy_env.alerts()
    assert alert["text"].startswith("Needs review: Exposed Buttocks or Anus 45.0%")


async def test_shadow_channel_records_without_alerting(policy_env: Stack) -> None:
    """mode = shadow: scanned and recorded, nothing posted."""
    async with http_bot(policy_env) as bot:
        await _post(bot, policy_env, STRICT, "C0SHADOW")
        rows = await bot.runtime.store.audit_log()
    assert policy_env.alerts() == []
    [scanned] = [row for row in rows if row["action"] == "scanned"]
    assert scanned["detail"]["decision"] == "review"
    assert scanned["detail"]["mode"] == "shadow"


async def test_off_channel_is_not_scanned(policy_env: Stack) -> None:
    """mode = off: not even fetched; /moderate still works there and says so."""
    async with http_bot(policy_env) as bot:
        await _post(bot, policy_env, STRICT, "C0OFF")
        assert policy_env.rekognition_calls() == 0
        assert policy_env.slack.file_requests == []
        reply = await bot.command("policy", channel="C0OFF")
    assert "Mode: *off*" in reply["body"]


async def test_only_watched_channels_are_scanned(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MODBOT_WATCH_CHANNELS limits automatic scans to the listed channels."""
    monkeypatch.setenv("MODBOT_WATCH_CHANNELS", "C0WATCHED")
    async with http_bot(stack) as bot:
        await _post(bot, stack, STRICT, GENERAL)
        assert stack.rekognition_calls() == 0
        await _post(bot, stack, REVIEW_COLOR, "C0WATCHED")
        assert stack.rekognition_calls() == 1
    [alert] = stack.alerts()
    assert "<#C0WATCHED>" in alert["text"]


def test_invalid_policy_file_stops_the_start_with_file_key_and_reason(tmp_path: object) -> None:
    """`modbot serve` with a bad policy: exit 2 and one line naming the file, key and reason."""
    policy = REPO_ROOT / "tests" / "data" / "policies" / "invalid_label_typo.toml"
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO_ROOT),
        "SLACK_BOT_TOKEN": "xoxb-1-test",
        "SLACK_SIGNING_SECRET": "secret",
        "MODBOT_ALERT_CHANNEL": "C0ALERTS",
        "MODBOT_POLICY_FILE": str(policy),
        # AWS in order, so that the policy is the one problem to report.
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": f"{tmp_path}/no-aws-config",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--http"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"modbot: {policy}: labels.")
    assert "unknown label" in line
    assert "Traceback" not in done.stderr
