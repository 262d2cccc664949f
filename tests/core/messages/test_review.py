"""Why a human review did not start or finish, in the words posted in the alert's thread."""

from __future__ import annotations

import pytest

from bot.core import messages
from bot.core.errors import DetectionFailed, ReviewFailed


@pytest.mark.parametrize(
    ("status", "code", "reason", "text"),
    [
        ("Stopped", None, None, "the human loop was stopped"),
        ("Failed", "Expired", None, "the human loop expired before the workers answered"),
        ("Failed", "ValidationError", "bad template", "the human loop failed: bad template"),
        ("Failed", "InternalError", None, "the human loop failed: InternalError"),
        ("Failed", None, None, "the human loop failed: unknown"),
    ],
)
def test_an_ended_loop_says_why(
    status: str, code: str | None, reason: str | None, text: str
) -> None:
    """Stopped, expired, or failed with A2I's reason (its code when there is no reason)."""
    assert messages.a2i_loop_failure(status, code, reason) == text


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            DetectionFailed("HumanLoopQuotaExceededException", "Too many loops"),
            "could not start: A2I human loop quota exceeded (too many reviews in progress)",
        ),
        (
            ReviewFailed("could not copy the image to s3://b", "AccessDenied: Access Denied"),
            "could not start: could not copy the image to s3://b: AccessDenied: Access Denied",
        ),
        (
            DetectionFailed("ThrottlingException", "Rate exceeded"),
            "could not start: Rekognition is throttling requests: Rate exceeded",
        ),
    ],
)
def test_a_review_that_could_not_start_says_why(error: Exception, text: str) -> None:
    """The loop quota in plain words; other errors as they describe themselves."""
    assert messages.review_not_started(error) == text


def test_the_failure_reply_carries_the_reason_and_the_loop() -> None:
    """The thread reply opens with the PRODUCT wording and names the loop."""
    reply = messages.review_failed(
        messages.a2i_loop_failure("Failed", "Expired", None), "modbot-abc"
    )
    assert reply.text == (
        ":warning: Human review did not finish (human loop `modbot-abc`): "
        "the human loop expired before the workers answered."
    )
