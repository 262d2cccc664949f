"""The Slack adapter's reading of failures: worth retrying or not, and Slack's Retry-After."""

from __future__ import annotations

import pytest

from bot.adapters.slack import slack_failure


@pytest.mark.parametrize(
    ("status", "error", "headers", "transient", "retry_after"),
    [
        (429, "ratelimited", {"Retry-After": "7"}, True, 7.0),
        (429, "ratelimited", {"retry-after": "2"}, True, 2.0),
        (429, "ratelimited", {}, True, None),
        (503, "service_unavailable", {}, True, None),
        (500, None, {}, True, None),
        (200, "internal_error", {}, True, None),
        (200, "fatal_error", {}, True, None),
        (200, "channel_not_found", {}, False, None),
        (200, "not_in_channel", {}, False, None),
        (200, "invalid_auth", {}, False, None),
        (404, None, {"Retry-After": "soon"}, False, None),
    ],
)
def test_slack_failures_are_transient_or_permanent(
    status: int,
    error: str | None,
    headers: dict[str, str],
    transient: bool,
    retry_after: float | None,
) -> None:
    """429, 5xx and Slack's 'try later' codes are transient (with Retry-After when sent);
    channel_not_found, not_in_channel, invalid_auth and other 4xx are not."""
    failure = slack_failure("chat.postMessage", status, error, headers)
    assert failure.transient is transient
    assert failure.retry_after == retry_after
    assert str(failure) == f"Slack chat.postMessage failed: {error or status}"
