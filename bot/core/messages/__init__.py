"""Every user-facing text and Block Kit layout modbot posts, in one package: shared pieces in
`common`, scan results and alerts in `scan`, why a scan failed in `failures`, human review in
`review`."""

from bot.core.messages.common import ACTION_OK, ACTION_VIOLATION, SlackMessage
from bot.core.messages.failures import failure_reason, failure_text
from bot.core.messages.review import (
    a2i_loop_failure,
    a2i_review_started,
    already_decided,
    resolved_alert,
    review_error,
    review_failed,
    review_not_started,
    review_reminder,
    review_started,
    verdict,
    vote_recorded,
    vote_refused,
)
from bot.core.messages.scan import (
    alert,
    could_not_scan,
    could_not_scan_all,
    no_images,
    policy_summary,
    scan_result,
    scanning,
    usage,
)

__all__ = [
    "ACTION_OK",
    "ACTION_VIOLATION",
    "SlackMessage",
    "a2i_loop_failure",
    "a2i_review_started",
    "alert",
    "already_decided",
    "could_not_scan",
    "could_not_scan_all",
    "failure_reason",
    "failure_text",
    "no_images",
    "policy_summary",
    "resolved_alert",
    "review_error",
    "review_failed",
    "review_not_started",
    "review_reminder",
    "review_started",
    "scan_result",
    "scanning",
    "usage",
    "verdict",
    "vote_recorded",
    "vote_refused",
]
