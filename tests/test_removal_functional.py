"""Removing images from Slack (PRODUCT §10) against the fake Slack: at the verdict, at a flag,
by the Remove button and for a re-post; refusals and retries; the admin token's confinement."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.app import running
from bot.core.errors import ConfigError
from bot.core.policy import load_policy
from bot.settings import load_settings
from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import (
    FLAG_COLOR,
    GENERAL,
    POSTER,
    REVIEW_COLOR,
    Stack,
    http_bot,
    started_stack,
)
from tests.removal_setup import (
    ADMIN_TOKEN,
    REMOVE,
    VIOLATION,
    actions,
    button_value,
    click,
    removing_policy,
    replies,
    upload_alert,
)

MOD = "U0MOD"


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("MODBOT_REVIEWERS", MOD)
    monkeypatch.setenv("MODBOT_RETRY_MAX_DELAY_SECONDS", "0.2")
    async with started_stack(tmp_path, monkeypatch) as stack:
        yield stack


async def test_a_confirmed_violation_is_removed_once_with_the_admin_token(
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """remove = on_violation: the verdict deletes the upload (files.delete with the admin
    token), `Removed:` in the thread, the alert updated without its Remove button, and the
    steps in `modbot audit export`."""
    removing_policy(tmp_path, monkeypatch, "on_violation")
    async with http_bot(stack) as bot:
        file, alert = await upload_alert(stack, bot, REVIEW_COLOR)
        scan_id = button_value(alert, REMOVE)
        assert not stack.slack.calls_to("files.delete")  # a review decision alone removes nothing
        await click(stack, bot, VIOLATION, scan_id, MOD, message_ts=alert["ts"])
        await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Removed:")))
        await stack.slack.wait_for(lambda: "Removed" in str(stack.alerts()[0]["blocks"]))
        [deleted] = stack.slack.calls_to("files.delete")
        assert deleted.params["file"] == file["id"]
        assert deleted.authorization == f"Bearer {ADMIN_TOKEN}"
        assert file["id"] in stack.slack.deleted_files
        [removed] = replies(stack, alert, "Removed:")
        assert "photo.png" in removed["text"]
        assert f"<@{POSTER}>" in removed["text"]
        assert "the policy" in removed["text"]
        updated = stack.alerts()[0]
        assert REMOVE not in str(updated["blocks"])
        assert "Verdict: violation" in str(updated["blocks"])
        assert {"removal_requested", "removed"} <= set(await actions(bot, scan_id))
    capsys.readouterr()
    assert main(["audit", "export", "--format", "jsonl"]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"removal_requested", "removed"} <= {row["action"] for row in exported}


async def test_a_flag_is_removed_at_once_under_on_flag(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """remove = on_flag: a flagged upload is deleted as soon as it is alerted, no human asked."""
    removing_policy(tmp_path, monkeypatch, "on_flag")
    async with http_bot(stack) as bot:
        file, alert = await upload_alert(stack, bot, FLAG_COLOR)
        await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Removed:")))
        assert file["id"] in stack.slack.deleted_files
        [removed] = replies(stack, alert, "Removed:")
        assert "flagged images are removed at once" in removed["text"]
        # A review-band image is not flagged: it stays.
        other, review_alert = await upload_alert(stack, bot, REVIEW_COLOR, name="other.png")
        assert other["id"] not in stack.slack.deleted_files
        assert not replies(stack, review_alert, "Removed:")


async def test_the_remove_button_is_for_allowed_reviewers_and_works_once(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """remove = never: the Remove button still removes; a stranger is refused; a forged or
    replayed click does nothing."""
    removing_policy(tmp_path, monkeypatch, "never")
    async with http_bot(stack) as bot:
        file, alert = await upload_alert(stack, bot, REVIEW_COLOR)
        _, other_alert = await upload_alert(stack, bot, REVIEW_COLOR, name="b.png", size=(300, 200))
        scan_id = button_value(alert, REMOVE)
        [refused] = await click(stack, bot, REMOVE, scan_id, "U0STRANGER", message_ts=alert["ts"])
        assert "Nothing was removed" in refused["text"]
        # Forged: this scan id on another alert's message, and a scan id that does not exist.
        [forged] = await click(stack, bot, REMOVE, scan_id, MOD, message_ts=other_alert["ts"])
        assert "Nothing was done" in forged["text"]
        await click(stack, bot, REMOVE, "0123456789abcdef", MOD, message_ts=alert["ts"])
        assert not stack.slack.calls_to("files.delete")
        assert "removal_requested" not in await actions(bot)
        [accepted] = await click(stack, bot, REMOVE, scan_id, MOD, message_ts=alert["ts"])
        assert "Removing" in accepted["text"]
        await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Removed:")))
        [removed] = replies(stack, alert, "Removed:")
        assert f"<@{MOD}>" in removed["text"]
        [again] = await click(stack, bot, REMOVE, scan_id, MOD, message_ts=alert["ts"])
        assert "already been removed" in again["text"]
        assert len(stack.slack.calls_to("files.delete")) == 1
        assert file["id"] in stack.slack.deleted_files


async def test_a_repost_of_a_confirmed_violation_is_removed(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bytes posted again after a violation verdict: removed with no new review."""
    removing_policy(tmp_path, monkeypatch, "on_violation")
    data = make_image(REVIEW_COLOR, (320, 240), "PNG")
    async with http_bot(stack) as bot:
        _, alert = await upload_alert(stack, bot, REVIEW_COLOR, data=data)
        await click(stack, bot, VIOLATION, button_value(alert, REMOVE), MOD, message_ts=alert["ts"])
        await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Removed:")))
        again, repost_alert = await upload_alert(
            stack, bot, REVIEW_COLOR, name="again.png", data=data
        )
        assert repost_alert["ts"] != alert["ts"]
        await stack.slack.wait_for(lambda: bool(replies(stack, repost_alert, "Removed:")))
        assert again["id"] in stack.slack.deleted_files
        [removed] = replies(stack, repost_alert, "Removed:")
        assert "re-post of a confirmed violation" in removed["text"]
        assert VIOLATION not in str(repost_alert["blocks"])  # no second review


async def test_an_image_link_is_removed_by_deleting_its_message(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flagged link: chat.delete of the poster's message, with the admin token."""
    removing_policy(tmp_path, monkeypatch, "on_flag")
    stack.web.add("/bad.png", make_image(FLAG_COLOR, (200, 200)))
    text = f"<{stack.web.url}/bad.png>"
    posted = stack.slack.post_as(POSTER, GENERAL, text)
    async with http_bot(stack) as bot:
        await bot.event(payloads.message_event(GENERAL, POSTER, text=text, ts=posted["ts"]))
        await bot.idle()
        [alert] = stack.alerts()
        await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Removed:")))
        [deleted] = stack.slack.calls_to("chat.delete")
        assert deleted.params == {**deleted.params, "channel": GENERAL, "ts": posted["ts"]}
        assert deleted.authorization == f"Bearer {ADMIN_TOKEN}"
        assert posted in stack.slack.deleted_messages
        # The admin token went to the Slack API only: never to the link's host or elsewhere.
        assert all(ADMIN_TOKEN not in str(hit.headers) for hit in stack.web.hits)
        assert not stack.target.hits
        assert {c.method for c in stack.slack.calls if ADMIN_TOKEN in (c.authorization or "")} <= {
            "auth.test",
            "files.delete",
            "chat.delete",
        }
        assert all(ADMIN_TOKEN not in (r.authorization or "") for r in stack.slack.file_requests)


@pytest.mark.parametrize(
    ("setup", "error", "fix"),
    [
        ("scope", "missing_scope", "files:write"),
        ("restricted", "restricted_action", "workspace settings"),
    ],
)
async def test_a_refused_removal_says_why_and_is_not_retried(  # noqa: PLR0917 - fixtures
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setup: str,
    error: str,
    fix: str,
) -> None:
    """Slack refuses the delete: `Could not remove:` with the reason and the fix, one call."""
    removing_policy(tmp_path, monkeypatch, "on_flag")
    if setup == "scope":
        stack.slack.admin_scopes = {"chat:write"}
    else:
        stack.slack.admin_restricted = True
    async with http_bot(stack) as bot:
        file, alert = await upload_alert(stack, bot, FLAG_COLOR)
        await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Could not remove:")))
        [failed] = replies(stack, alert, "Could not remove:")
        assert error in failed["text"]
        assert fix in failed["text"]
        assert len(stack.slack.calls_to("files.delete")) == 1
        assert file["id"] not in stack.slack.deleted_files
        assert "removal_failed" in await actions(bot)
        assert not replies(stack, alert, "Removed:")


async def test_transient_failures_are_retried_until_the_removal_goes_through(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5xx and 429 answers are retried with the project's backoff; then `Removed:` once."""
    removing_policy(tmp_path, monkeypatch, "on_flag")
    stack.slack.fail_next("files.delete", 503, count=4)  # beyond slack_sdk's own 5xx retries
    stack.slack.fail_next("files.delete", 200, {"ok": False, "error": "ratelimited"})
    async with http_bot(stack) as bot:
        file, alert = await upload_alert(stack, bot, FLAG_COLOR)
        await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Removed:")), timeout=20)
        assert file["id"] in stack.slack.deleted_files
        assert len(stack.slack.calls_to("files.delete")) == 6
        assert len(replies(stack, alert, "Removed:")) == 1
        assert not replies(stack, alert, "Could not remove:")


async def test_without_the_admin_token_a_removing_policy_stops_the_start(
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One line naming the policy file and SLACK_ADMIN_TOKEN; exit code 2."""
    path = removing_policy(tmp_path, monkeypatch, "on_violation")
    monkeypatch.delenv("SLACK_ADMIN_TOKEN")
    assert main(["serve", "--http"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "MODBOT_POLICY_FILE" in line
    assert "SLACK_ADMIN_TOKEN" in line
    assert str(path) in line


async def test_an_admin_token_of_a_non_admin_stops_the_start(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """auth.test then users.info: a token whose user is neither Owner nor Admin is refused."""
    removing_policy(tmp_path, monkeypatch, "on_flag")
    stack.slack.users[stack.slack.admin_user]["is_admin"] = False
    settings = load_settings()
    with pytest.raises(ConfigError, match="SLACK_ADMIN_TOKEN: its user U0ADMIN is not"):
        async with running(settings, load_policy(settings.policy_file)):
            pass
    monkeypatch.setenv("SLACK_ADMIN_TOKEN", "xoxp-revoked")
    settings = load_settings()
    with pytest.raises(ConfigError, match=r"SLACK_ADMIN_TOKEN: Slack refused it \(invalid_auth\)"):
        async with running(settings, load_policy(settings.policy_file)):
            pass


def test_the_remove_key_is_checked_by_policy_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`modbot policy check` names a bad `remove` value with its key."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[labels."Explicit"]\nremove = "sometimes"\n', encoding="utf-8")
    assert main(["policy", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert 'labels."Explicit".remove' in err
    assert "on_violation" in err
    good = tmp_path / "good.toml"
    good.write_text('[defaults]\nremove = "on_flag"\n[channels.C0ABC]\nremove = "never"\n')
    assert main(["policy", "check", str(good)]) == 0


async def test_the_admin_token_is_never_logged(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Not in any log record, even when Slack refuses it and errors are logged."""
    removing_policy(tmp_path, monkeypatch, "on_flag")
    caplog.set_level(logging.DEBUG)
    stack.slack.fail_next("files.delete", 503, count=4)
    async with http_bot(stack) as bot:
        _, alert = await upload_alert(stack, bot, FLAG_COLOR)
        await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Removed:")), timeout=20)
    assert caplog.records
    assert all(ADMIN_TOKEN not in record.getMessage() for record in caplog.records)
    assert ADMIN_TOKEN not in caplog.text
