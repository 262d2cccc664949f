"""Messages about scans: alerts, the /moderate answer, "Could not scan", help and policy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot.core import taxonomy
from bot.core.errors import ScanFailed
from bot.core.messages import removal
from bot.core.messages.common import (
    ACTION_OK,
    ACTION_VIOLATION,
    MAX_BREAKDOWN_LINES,
    MAX_FIELD_CHARS,
    MAX_SECTION_CHARS,
    PATH_SEPARATOR,
    TITLES,
    SlackMessage,
    alert_link,
    bar,
    channel_ref,
    code,
    context,
    escape,
    header,
    link,
    percent,
    section,
    sections,
    short_id,
    user_ref,
)
from bot.core.messages.failures import failure_reason
from bot.core.model import ChannelMode, Label, ScanReport, ScanRequest, Trigger
from bot.core.policy import Policy, thresholds_for

# --- the pieces of a scan report ----------------------------------------------------------


def _image(report: ScanReport) -> str:
    image = report.request.image
    if image.name:
        return code(image.name)
    if image.url:
        return link(image.url)
    return code(image.file_id or "image")


def _source_fields(report: ScanReport, source_link: str | None) -> list[str]:
    origin = report.request.origin
    fields = []
    if origin.channel:
        fields.append(f"*Channel:*\n{channel_ref(origin.channel)}")
    if origin.user:
        who = "Requested by" if origin.trigger is Trigger.COMMAND else "Posted by"
        fields.append(f"*{who}:*\n{user_ref(origin.user)}")
    fields.append(f"*Image:*\n{_image(report)}")
    if source_link:
        fields.append(f"*Message:*\n{link(source_link, 'View message')}")
    return [field[:MAX_FIELD_CHARS] for field in fields]


def _breakdown(labels: Sequence[Label]) -> list[dict[str, Any]]:
    if not labels:
        return [section("*Confidence breakdown*\nNo moderation labels found.")]
    branches = taxonomy.deepest(labels)
    shown = branches[:MAX_BREAKDOWN_LINES]
    lines = []
    named: set[str] = set()
    for label in shown:
        names = taxonomy.path(label, labels)
        named.update(taxonomy.key(name) for name in names)
        route = PATH_SEPARATOR.join(escape(name) for name in names)
        lines.append(f"• {route} — *{percent(label.confidence)}* {bar(label.confidence)}")
    hidden = {taxonomy.key(label.name) for label in labels} - named
    if hidden:
        lines.append(f"… and {len(hidden)} more labels")
    return sections("*Confidence breakdown*", lines)


def _report_breakdown(report: ScanReport) -> list[dict[str, Any]]:
    if _matched_only(report):
        return [section("*Confidence breakdown*\nNot sent for detection: the hash matched.")]
    return _breakdown(report.detection.labels)


def _causes(causes: Iterable[Label]) -> str:
    causes = list(causes)
    listed = ", ".join(f"{escape(c.name)} ({percent(c.confidence)})" for c in causes[:10])
    more = f" and {len(causes) - 10} more" if len(causes) > 10 else ""
    return f"*Caused by:* {listed}{more}"


def _history(report: ScanReport) -> list[str]:
    history = report.history
    notes = []
    if report.partner is not None:
        notes.append(_partner_note(report))
    if history.verdict is not None and history.verdict.violation:
        earlier = alert_link(history.verdict.alert, "earlier alert")
        where = f" ({earlier})" if earlier else ""
        labels = ", ".join(escape(name) for name in history.verdict.labels[:10])
        what = f": {labels}" if labels else ""
        if history.verdict.distance is not None:
            where = f" ({_distance(history.verdict.distance)}{', ' + earlier if earlier else ''})"
            notes.append(
                f":no_entry: *Near-duplicate of a confirmed violation*{where}{what}. "
                "Not sent for detection; no new review is started."
            )
        else:
            notes.append(
                f":no_entry: *Confirmed violation earlier*{where}{what}. No new review is started."
            )
    elif history.verdict is not None:
        earlier = alert_link(history.verdict.alert, "earlier alert")
        where = f" ({earlier})" if earlier else ""
        notes.append(f":white_check_mark: Confirmed *no violation* earlier{where}.")
    if history.open_review is not None:
        notes.append(
            f":hourglass_flowing_sand: A review of this image is already open: "
            f"{alert_link(history.open_review, 'open review')}. No second review starts."
        )
    if history.similar is not None:
        earlier = alert_link(history.similar.alert, "earlier alert")
        where = f", {earlier}" if earlier else ""
        notes.append(
            f":information_source: Near-duplicate of an image confirmed *no violation* earlier "
            f"({_distance(history.similar.distance or 0)}{where}). It does not change the "
            "decision."
        )
    if report.reused:
        earlier = alert_link(history.earlier_alert, "earlier alert")
        where = f" See the {earlier}." if earlier else ""
        notes.append(
            f":recycle: Seen before: the same image was scanned earlier and that result is reused."
            f"{where}"
        )
    return notes


def _distance(bits: int) -> str:
    return f"distance {bits} of 256 bits"


def _partner_note(report: ScanReport) -> str:
    partner = report.partner
    assert partner is not None
    how_far = f" ({_distance(partner.distance)})" if partner.distance is not None else ""
    return f":link: *Match in HMA bank {code(partner.bank)}*{how_far}. Flagged without detection."


def _matched_only(report: ScanReport) -> bool:
    """Flagged from a hash match alone: the detector never saw this image."""
    verdict = report.history.verdict
    near = verdict is not None and verdict.distance is not None
    return not report.detection.labels and (near or report.partner is not None)


def _footer(report: ScanReport) -> str:
    parts = [
        f"Model {escape(report.detection.model_version or 'unknown')}",
        f"Scan `{escape(short_id(report.scan_id))}`",
    ]
    parts.extend(
        f"{escape(kind.name.capitalize())} {percent(kind.confidence)}"
        for kind in report.detection.content_types[:5]
    )
    return " · ".join(parts)


def _summary(report: ScanReport) -> str:
    """'Flagged: Explicit Nudity 97.3% in <#C1>' — the decision, the top label, the channel."""
    _, title = TITLES[report.outcome.decision]
    top = taxonomy.top_label(report.detection.labels)
    what = f"{top.name} {percent(top.confidence)}" if top else "no moderation labels"
    verdict = report.history.verdict
    if top is None and report.partner is not None:
        what = f"match in HMA bank {report.partner.bank}"
    elif top is None and verdict is not None and verdict.distance is not None:
        what = f"near-duplicate of a confirmed violation ({_distance(verdict.distance)})"
    channel = report.request.origin.channel
    where = f" in {channel_ref(channel)}" if channel else ""
    return f"{title}: {what}{where}"


# --- the messages -------------------------------------------------------------------------


def alert(
    report: ScanReport,
    *,
    source_link: str | None,
    review_buttons: bool,
    remove_button: bool = False,
) -> SlackMessage:
    """The alert posted to the alerts channel for a review or flag decision."""
    emoji, title = TITLES[report.outcome.decision]
    blocks: list[dict[str, Any]] = [
        header(f"{emoji} {title}"),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": field} for field in _source_fields(report, source_link)
            ],
        },
        *_report_breakdown(report),
    ]
    if report.outcome.causes:
        blocks.append(section(_causes(report.outcome.causes)))
    blocks.extend(section(note) for note in _history(report))
    blocks.append(context(_footer(report)))
    if review_buttons:
        blocks.append(_review_buttons(report.scan_id))
    if remove_button:
        blocks.append(removal.remove_button(report.scan_id))
    return SlackMessage(text=_summary(report), blocks=tuple(blocks))


def _review_buttons(scan_id: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": f"modbot_review:{scan_id}"[:255],
        "elements": [
            {
                "type": "button",
                "action_id": ACTION_VIOLATION,
                "style": "danger",
                "value": scan_id,
                "text": {"type": "plain_text", "text": "Violation"},
            },
            {
                "type": "button",
                "action_id": ACTION_OK,
                "style": "primary",
                "value": scan_id,
                "text": {"type": "plain_text", "text": "No violation"},
            },
        ],
    }


_MODE_NOTES = {
    ChannelMode.SHADOW: ":ghost: This channel is in *shadow mode*: the decision is recorded, "
    "but no alert is posted and no review starts.",
    ChannelMode.OFF: ":zzz: Moderation is *off* in this channel; this image was scanned "
    "because you asked.",
}


def scan_result(report: ScanReport) -> SlackMessage:
    """The ephemeral breakdown for whoever asked (/moderate, shortcut), whatever the decision."""
    emoji, title = TITLES[report.outcome.decision]
    blocks: list[dict[str, Any]] = [
        header(f"{emoji} {title}"),
        section(f"*Image:* {_image(report)}"[:MAX_SECTION_CHARS]),
        *_report_breakdown(report),
    ]
    if report.outcome.causes:
        blocks.append(section(_causes(report.outcome.causes)))
    if report.outcome.mode in _MODE_NOTES:
        blocks.append(section(_MODE_NOTES[report.outcome.mode]))
    blocks.extend(section(note) for note in _history(report))
    blocks.append(context(_footer(report)))
    return SlackMessage(text=_summary(report), blocks=tuple(blocks))


def _unscanned(request: ScanRequest) -> str:
    """The image that could not be scanned, and for automatic scans who posted it where."""
    origin = request.origin
    image = request.image
    what = code(image.name) if image.name else link(image.url) if image.url else "an image"
    if origin.trigger is not Trigger.COMMAND:
        if origin.user:
            what += f" posted by {user_ref(origin.user)}"
        if origin.channel:
            what += f" in {channel_ref(origin.channel)}"
    return what


def could_not_scan(error: ScanFailed, request: ScanRequest) -> SlackMessage:
    """'Could not scan …: <reason>' — for the caller, or a note in the alerts channel."""
    text = f"Could not scan {_unscanned(request)}: {escape(failure_reason(error))}"
    blocks: list[dict[str, Any]] = [section(f":x: {text}"[:MAX_SECTION_CHARS])]
    if error.transient:
        blocks.append(context("This looks temporary; trying again later may work."))
    return SlackMessage(text=text, blocks=tuple(blocks))


MAX_NOTE_LINES = 20  # images named one by one in a summarised note; the rest are counted


def could_not_scan_all(failures: Sequence[tuple[ScanFailed, ScanRequest]]) -> SlackMessage:
    """One note for several images that could not be scanned (a flood of dead links must not
    use up the alerts channel's posting budget): each named with its reason, up to a limit,
    then the count of the rest."""
    if len(failures) == 1:
        return could_not_scan(*failures[0])
    lines = [
        f"• {_unscanned(request)}: {escape(failure_reason(error))}"
        for error, request in failures[:MAX_NOTE_LINES]
    ]
    rest = len(failures) - len(lines)
    if rest:
        lines.append(f"• … and {rest} more")
    head = f"Could not scan {len(failures)} images"
    text = "\n".join([f"{head}:", *lines])
    return SlackMessage(text=text, blocks=tuple(sections(f":x: *{head}:*", lines)))


def usage() -> SlackMessage:
    """`/moderate help`."""
    text = "\n".join(
        [
            "*modbot* checks images posted in this workspace and alerts the moderators.",
            "• `/moderate &lt;url&gt;`: scan an image link; only you see the result",
            "• `/moderate policy`: the thresholds in force in this channel",
            "• `/moderate help`: this message",
            "• Message shortcut *Moderate images*: scan the images of a message",
        ]
    )
    return SlackMessage(text=text, blocks=(section(text),))


def policy_summary(policy: Policy, channel: str | None) -> SlackMessage:
    """`/moderate policy`: the resolved thresholds in force in one channel."""
    t = thresholds_for(policy, channel)
    where = f"in {channel_ref(channel)}" if channel else "here"
    head = [
        f"*Moderation policy {where}* ({escape(t.source)})",
        f"Mode: *{t.mode.value}*",
        f"Review at {t.review:g}% or more, flag at {t.flag:g}% or more; "
        f"labels under {t.min_confidence:g}% are not looked at.",
        f"Flagged images also get a human review: {'yes' if t.confirm else 'no'}.",
    ]
    lines = [
        f"• {escape(rule.label)}: "
        + ("ignored" if rule.ignored else f"review {rule.review:g}%, flag {rule.flag:g}%")
        + (" (this channel)" if rule.channel_rule else "")
        for rule in t.labels
    ]
    blocks = [section("\n".join(head))]
    if lines:
        blocks.extend(sections("*Label rules* (a rule covers the labels below it)", lines))
    return SlackMessage(
        text=f"Moderation policy {where}: mode {t.mode.value}, "
        f"review {t.review:g}%, flag {t.flag:g}%",
        blocks=tuple(blocks),
    )


def scanning(url: str) -> str:
    """The immediate acknowledgement of `/moderate <url>`."""
    return f"Scanning {link(url)} …"


def no_images() -> str:
    """The message shortcut found nothing to scan."""
    return "That message has no images or image links to scan."
