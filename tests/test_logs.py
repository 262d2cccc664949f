"""Logging as `modbot serve` configures it: nothing written carries a token or a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot import __main__ as main_module
from bot import logs

BOT_TOKEN = "xoxb-1234-5678-abcdefghijkl"
SECRET = "configured-signing-secret-42"


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """The configured handler's stream, in memory; the root logger restored afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    logs.configure(level=logging.DEBUG, secrets=[SECRET])
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


class SlackLikeError(Exception):
    """An exception whose message and repr carry what a failed Slack call can carry."""

    def __repr__(self) -> str:
        return f"SlackLikeError(url='https://slack.com/api/x?token={BOT_TOKEN}')"


def _fail() -> None:
    raise SlackLikeError(f"call failed with token {BOT_TOKEN} and secret {SECRET}")


def test_tracebacks_and_stacks_are_redacted(output: io.StringIO) -> None:
    """log.exception, a chained cause and stack_info: no token, no configured secret."""
    log = logging.getLogger("bot.test_logs")
    try:
        try:
            _fail()
        except SlackLikeError as exc:
            raise RuntimeError(f"wrapped {exc!r}") from exc
    except RuntimeError:
        log.exception("posting failed")
    log.warning("stack with %s", "no secret in the message", stack_info=True)
    written = output.getvalue()
    assert "Traceback" in written
    assert "posting failed" in written
    assert "Stack (most recent call last)" in written
    assert BOT_TOKEN not in written
    assert SECRET not in written
    assert "***" in written


def test_messages_are_still_redacted_for_every_handler(output: io.StringIO) -> None:
    """The filter still masks the message itself, as before."""
    logging.getLogger("bot.test_logs").info("token %s secret %s", BOT_TOKEN, SECRET)
    assert output.getvalue().rstrip().endswith("token *** secret ***")


def test_an_error_that_stops_serve_is_reported_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unexpected error out of `modbot serve` goes through the masked logs (exit 1), not
    through Python's own unmasked traceback."""
    for name, value in {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "MODBOT_ALERT_CHANNEL": "C1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)

    def crash(*args: object) -> None:
        _fail()

    monkeypatch.setattr(main_module, "serve_http", crash)
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        assert main_module.main(["serve", "--http"]) == 1
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
    written = capsys.readouterr().err
    assert "modbot stopped by an unexpected error" in written
    assert "Traceback" in written
    assert BOT_TOKEN not in written
    assert SECRET not in written


@pytest.fixture
def json_output() -> Iterator[io.StringIO]:
    """As `output`, with MODBOT_LOG_FORMAT=json's formatter."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    logs.configure(level=logging.DEBUG, secrets=[SECRET], log_format="json")
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


def test_json_logs_are_one_object_per_line_and_redacted(json_output: io.StringIO) -> None:
    """json: every record is one line holding one JSON object (time, level, logger, message,
    and the traceback or stack when there is one); no token or secret in any of it."""
    log = logging.getLogger("bot.test_logs")
    log.info("token %s secret %s", BOT_TOKEN, SECRET)
    try:
        _fail()
    except SlackLikeError:
        log.exception('posting "failed"\nsecond line')
    log.warning("with a stack", stack_info=True)
    lines = json_output.getvalue().splitlines()
    assert len(lines) == 3
    first, failed, stacked = (json.loads(line) for line in lines)
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["level"] == "INFO"
    assert first["logger"] == "bot.test_logs"
    assert first["message"] == "token *** secret ***"
    assert first["time"].endswith("+00:00")
    assert failed["message"] == 'posting "failed"\nsecond line'
    assert failed["exc_info"].startswith("Traceback")
    assert "SlackLikeError" in failed["exc_info"]
    assert stacked["stack_info"].startswith("Stack (most recent call last)")
    written = json_output.getvalue()
    assert BOT_TOKEN not in written
    assert SECRET not in written


def test_serve_logs_json_when_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MODBOT_LOG_FORMAT=json reaches `modbot serve`'s logging: its error report is JSON lines,
    masked."""
    for name, value in {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "MODBOT_ALERT_CHANNEL": "C1",
        "MODBOT_LOG_FORMAT": "json",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)

    def crash(*args: object) -> None:
        _fail()

    monkeypatch.setattr(main_module, "serve_http", crash)
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        assert main_module.main(["serve", "--http"]) == 1
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
    written = capsys.readouterr().err
    [record] = [json.loads(line) for line in written.splitlines()]
    assert record["message"] == "modbot stopped by an unexpected error"
    assert record["level"] == "ERROR"
    assert BOT_TOKEN not in written
    assert SECRET not in written


def test_an_unknown_log_format_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MODBOT_LOG_FORMAT=xml stops the start with one line naming the variable (exit 2)."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("MODBOT_ALERT_CHANNEL", "C1")
    monkeypatch.setenv("MODBOT_LOG_FORMAT", "xml")
    assert main_module.main(["serve", "--http"]) == 2
    assert "modbot: MODBOT_LOG_FORMAT: Input should be 'text' or 'json'" in capsys.readouterr().err
