"""Messages about human review: started, reminders, votes, verdicts and failures (PRODUCT §6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.core.errors import DetectionFailed
from bot.core.messages.common import SlackMessage, code, context, escape, section, user_ref
from bot.core.messages.failures import failure_text
from bot.core.slack_ids import is_user_group
from bot.core.verdict import Verdict


def duration(seconds: float) -> str:
    """'42 s', '3 min', '1 h 5 min', '2 d 3 h' — how long a review took or has been open."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _who(reviewers: Sequence[str]) -> str:
    groups = [f"<!subteam^{r}>" for r in reviewers if is_user_group(r)]
    users = [user_ref(r) for r in reviewers if not is_user_group(r)]
    return ", ".join(users + groups)


def review_started(*, quorum: int, reviewers: Sequence[str]) -> SlackMessage:
    votes = "1 vote" if quorum == 1 else f"{quorum} agreeing votes"
    who = f"from {_who(reviewers)}" if reviewers else "from anyone in this channel"
    text = (
        f":mag: Human review started: {votes} needed {who}. "
        "Use the *Violation* / *No violation* buttons on the alert."
    )
    return SlackMessage(text=text, blocks=(section(text),))


def a2i_review_started(loop_name: str, loop_arn: str | None) -> SlackMessage:
    text = (
        f":mag: Human review started in Amazon A2I: human loop {code(loop_name)}. "
        "The verdict will be posted in this thread."
    )
    blocks = [section(text)]
    if loop_arn:
        blocks.append(context(escape(loop_arn)))
    return SlackMessage(text=text, blocks=tuple(blocks))


def review_reminder(open_for: float) -> SlackMessage:
    text = (
        f":alarm_clock: Reminder: this review has been open for {duration(open_for)} "
        "without a verdict."
    )
    return SlackMessage(text=text, blocks=(section(text),))


def _verdict_line(verdict: Verdict) -> str:
    if verdict.violation:
        labels = ", ".join(escape(name) for name in verdict.labels[:10])
        what = f"violation ({labels})" if labels else "violation"
    else:
        what = "no violation"
    if verdict.reviewers:
        by = f"decided by {_who(verdict.reviewers)}"
    else:
        workers = "1 A2I worker" if verdict.workers == 1 else f"{verdict.workers} A2I workers"
        by = f"decided by {workers}"
        if verdict.loop_name:
            by += f" in human loop {code(verdict.loop_name)}"
    return f"Verdict: {what} — {by}, after {duration(verdict.seconds)}."


def verdict_line(result: Verdict) -> str:
    """'Verdict: violation (…) — decided by …, after …' (the alert's status line)."""
    return _verdict_line(result)


def verdict(result: Verdict) -> SlackMessage:
    """The thread reply announcing the human decision; its text starts with 'Verdict:'."""
    text = _verdict_line(result)
    emoji = ":no_entry:" if result.violation else ":white_check_mark:"
    return SlackMessage(text=text, blocks=(section(f"{emoji} {text}"),))


def resolved_alert(original: Mapping[str, Any] | None, result: Verdict) -> SlackMessage:
    """The alert as posted, with its vote buttons removed and the verdict as its status line."""
    status = context(f"*{_verdict_line(result)}*")
    if not original:
        return SlackMessage(text=_verdict_line(result), blocks=(status,))
    blocks = [block for block in original.get("blocks") or () if block.get("type") != "actions"]
    base = str(original.get("text") or "Moderation alert")
    outcome = "violation" if result.violation else "no violation"
    return SlackMessage(text=f"{base} (verdict: {outcome})", blocks=(*blocks[:49], status))


def review_failed(detail: str, loop_name: str | None) -> SlackMessage:
    loop = f" (human loop {code(loop_name)})" if loop_name else ""
    text = f":warning: Human review did not finish{loop}: {escape(detail)}."
    return SlackMessage(text=text, blocks=(section(text),))


def vote_refused() -> str:
    return (
        "Only the reviewers named in MODBOT_REVIEWERS can vote on this review. "
        "Your click was not recorded."
    )


def already_decided() -> str:
    return "This review is already decided; your click was not recorded."


def vote_recorded(violation: bool) -> str:
    choice = "violation" if violation else "no violation"
    return f"Your vote ({choice}) is recorded. You can change it until a verdict is reached."


def a2i_loop_failure(status: str, failure_code: str | None, failure_reason: str | None) -> str:
    """Why an A2I human loop ended without answers (shown after "Human review did not finish")."""
    if status == "Stopped":
        return "the human loop was stopped"
    if failure_code == "Expired":
        return "the human loop expired before the workers answered"
    return f"the human loop failed: {failure_reason or failure_code or 'unknown'}"


def review_error(exc: BaseException) -> str:
    """An error that kept a review from starting or finishing, in plain words."""
    if isinstance(exc, DetectionFailed) and exc.code == "HumanLoopQuotaExceededException":
        return "A2I human loop quota exceeded (too many reviews in progress)"
    if isinstance(exc, DetectionFailed):
        return failure_text(exc)  # Rekognition's codes in plain words, as in "Could not scan"
    return str(exc)


def review_not_started(exc: BaseException) -> str:
    """The stored detail of a review that could not be started."""
    return f"could not start: {review_error(exc)}"
