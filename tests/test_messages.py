"""User-facing text and Block Kit (PRODUCT.md §5): content, limits, escaping, snapshots.

Snapshots live in tests/data/snapshots/; regenerate deliberately with
`UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_messages.py` and review the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.core import messages, taxonomy
from bot.core.errors import DetectionFailed, FetchBlocked, FetchFailed, ImageRejected, ScanFailed
from bot.core.messages import ACTION_OK, ACTION_VIOLATION, SlackMessage, common
from bot.core.model import (
    AlertRef,
    ChannelMode,
    ContentType,
    Decision,
    Detection,
    History,
    ImageRef,
    Label,
    Origin,
    Outcome,
    PriorVerdict,
    ScanReport,
    ScanRequest,
    Trigger,
)
from bot.core.policy import load_policy

SNAPSHOTS = Path(__file__).parent / "data" / "snapshots"
EXAMPLE = load_policy(Path(__file__).parent / "data" / "policies" / "example.toml")

LABELS = (
    Label("Exposed Female Nipple", "Explicit Nudity", 3, 97.25),
    Label("Exposed Male Genitalia", "Explicit Nudity", 3, 61.04),
    Label("Explicit Nudity", "Explicit", 2, 97.25),
    Label("Explicit", "", 1, 97.25),
    Label("Smoking", "Drug & Tobacco Paraphernalia & Use", 3, 55.5),
    Label("Drug & Tobacco Paraphernalia & Use", "Drugs & Tobacco", 2, 55.5),
    Label("Drugs & Tobacco", "", 1, 55.5),
)
UPLOAD = ScanRequest(
    image=ImageRef(file_id="F0001", name="beach <party> & more.png", mimetype="image/png"),
    origin=Origin(Trigger.UPLOAD, channel="C0GENERAL", user="U0POSTER", message_ts="1700.0001"),
    dedup_key="file:F0001",
)
COMMAND = ScanRequest(
    image=ImageRef(url="https://img.example/cat.jpg?a=1&b=<2>"),
    origin=Origin(Trigger.COMMAND, channel="C0GENERAL", user="U0ASKER"),
    dedup_key="cmd:1",
)


def report(
    labels: tuple[Label, ...] = LABELS,
    decision: Decision = Decision.FLAG,
    causes: tuple[Label, ...] = (LABELS[0],),
    request: ScanRequest = UPLOAD,
    **changes: Any,
) -> ScanReport:
    base = ScanReport(
        scan_id="scan-7f3c2a91e0b4",
        request=request,
        detection=Detection(
            labels=labels,
            model_version="7.0",
            content_types=(ContentType("illustrated", 99.9),),
        ),
        outcome=Outcome(decision=decision, causes=causes),
        sha256="ab" * 32,
    )
    return dataclasses.replace(base, **changes)


def valid(message: SlackMessage) -> SlackMessage:
    """Check every block with slack_sdk plus the limits the SDK does not know about."""
    kwargs = message.as_kwargs()
    assert kwargs["text"]
    blocks = kwargs.get("blocks", [])
    assert len(blocks) <= 50
    for block in Block.parse_all(blocks):
        block.validate_json()
    for block in blocks:
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    return message


def all_text(message: SlackMessage) -> str:
    return json.dumps(message.as_kwargs(), ensure_ascii=False)


def check_snapshot(name: str, message: SlackMessage) -> None:
    path = SNAPSHOTS / f"{name}.json"
    actual = json.dumps(message.as_kwargs(), indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"missing snapshot {path}; set UPDATE_SNAPSHOTS=1 to create it"
    assert actual == path.read_text(encoding="utf-8")


def test_alert_snapshot() -> None:
    """The flagged alert's full layout is pinned by a reviewed JSON snapshot."""
    message = valid(
        messages.alert(
            report(),
            source_link="https://acme.slack.com/archives/C0GENERAL/p17000001",
            review_buttons=True,
        )
    )
    check_snapshot("alert_flag", message)


def test_alert_breakdown_lines() -> None:
    """One line per branch: L1 \u203a L2 \u203a L3, one-decimal percent, a bar; all names shown."""
    text = all_text(messages.alert(report(), source_link=None, review_buttons=False))
    sep = " \u203a "
    assert (
        sep.join(("Explicit", "Explicit Nudity", "Exposed Female Nipple"))
        + (" — *97.3%* ▰▰▰▰▰▰▰▰▰▰")
        in text
    )
    assert (
        sep.join(("Explicit", "Explicit Nudity", "Exposed Male Genitalia"))
        + (" — *61.0%* ▰▰▰▰▰▰▱▱▱▱")
        in text
    )
    assert (
        sep.join(("Drugs &amp; Tobacco", "Drug &amp; Tobacco Paraphernalia &amp; Use", "Smoking"))
        in text
    )
    for label in LABELS:
        assert common.escape(label.name) in text


@pytest.mark.parametrize(
    ("decision", "header"),
    [(Decision.FLAG, ":rotating_light: Flagged"), (Decision.REVIEW, ":warning: Needs review")],
)
def test_alert_header_and_fallback_text(decision: Decision, header: str) -> None:
    """The header names the decision; the fallback names decision, top label and channel."""
    message = messages.alert(report(decision=decision), source_link=None, review_buttons=False)
    assert message.blocks[0]["text"]["text"] == header
    title = header.split(" ", 1)[1]
    assert message.text == f"{title}: Exposed Female Nipple 97.3% in <#C0GENERAL>"


def test_alert_names_the_source() -> None:
    """Channel link, poster mention, escaped file name and the permalink appear; no image."""
    text = all_text(
        messages.alert(report(), source_link="https://x.slack.com/p1", review_buttons=False)
    )
    assert "<#C0GENERAL>" in text
    assert "<@U0POSTER>" in text
    assert "beach &lt;party&gt; &amp; more.png" in text
    assert "<https://x.slack.com/p1|View message>" in text
    assert '"image"' not in text  # no image block, ever
    assert "Caused by:* Exposed Female Nipple (97.3%)" in text
    assert "Model 7.0" in text
    assert "`scan-7f3`" in text


def test_alert_for_moderate_shows_the_url_escaped() -> None:
    """For /moderate the URL is the source, escaped so it cannot inject markup."""
    text = all_text(messages.alert(report(request=COMMAND), source_link=None, review_buttons=False))
    assert "https://img.example/cat.jpg?a=1&amp;b=&lt;2&gt;" in text
    assert "Requested by" in text


def test_review_buttons_only_when_asked() -> None:
    """Buttons carry the exact action ids and the scan id, and only when review_buttons."""
    with_buttons = messages.alert(report(), source_link=None, review_buttons=True)
    actions = [b for b in with_buttons.blocks if b["type"] == "actions"]
    assert len(actions) == 1
    elements = actions[0]["elements"]
    assert [e["action_id"] for e in elements] == [ACTION_VIOLATION, ACTION_OK]
    assert {e["value"] for e in elements} == {"scan-7f3c2a91e0b4"}
    assert ACTION_VIOLATION == "modbot_review_violation"
    assert ACTION_OK == "modbot_review_ok"
    without = messages.alert(report(), source_link=None, review_buttons=False)
    assert not [b for b in without.blocks if b["type"] == "actions"]


def test_reused_and_history_notes() -> None:
    """Re-posts say so; a confirmed violation and an open review link the earlier alert."""
    earlier = AlertRef("C0ALERTS", "1700.1", "https://x.slack.com/archives/C0ALERTS/p1")
    history = History(
        earlier_alert=earlier,
        verdict=PriorVerdict(violation=True, labels=("Explicit",), alert=earlier),
    )
    text = all_text(
        valid(
            messages.alert(
                report(reused=True, history=history), source_link=None, review_buttons=False
            )
        )
    )
    assert "Confirmed violation earlier" in text
    assert f"<{earlier.permalink}|earlier alert>" in text
    assert "Seen before" in text
    open_review = History(open_review=AlertRef("C0ALERTS", "1700.2", "https://x/p2"))
    text = all_text(
        messages.alert(report(history=open_review), source_link=None, review_buttons=False)
    )
    assert "<https://x/p2|open review>" in text
    assert "No second review starts" in text


def test_long_label_list_is_summarised_within_limits() -> None:
    """Hundreds of labels are summarised ("… and N more labels") and blocks stay valid."""
    labels = tuple(Label(f"Made Up Label {i} " + "x" * 120, "", 1, 40 + i % 60) for i in range(300))
    message = valid(
        messages.alert(report(labels=labels, causes=labels), source_link=None, review_buttons=True)
    )
    text = all_text(message)
    assert f"… and {300 - common.MAX_BREAKDOWN_LINES} more labels" in text
    assert "and 290 more" in text  # causes summarised too


def test_every_v7_label_at_once_is_valid() -> None:
    """A response with every v7 label fits Block Kit limits and names each label."""
    labels = tuple(
        Label(name, (taxonomy.ancestors(name) or ("",))[0], taxonomy.level(name) or 1, 88.0)
        for name in taxonomy.ALL_LABELS
    )
    text = all_text(
        valid(messages.alert(report(labels=labels), source_link=None, review_buttons=True))
    )
    named = sum(common.escape(name) in text for name in taxonomy.ALL_LABELS)
    hidden = re.search(r"… and (\d+) more labels", text)
    assert named + (int(hidden.group(1)) if hidden else 0) >= len(taxonomy.ALL_LABELS)


def test_scan_result_allowed_and_shadow() -> None:
    """/moderate callers get a breakdown whatever the decision, with shadow-mode notes."""
    clean = valid(messages.scan_result(report(labels=(), decision=Decision.ALLOW, causes=())))
    assert clean.text == "Allowed: no moderation labels in <#C0GENERAL>"
    assert "No moderation labels found." in all_text(clean)
    shadow = report(outcome=Outcome(Decision.FLAG, (LABELS[0],), mode=ChannelMode.SHADOW))
    text = all_text(valid(messages.scan_result(shadow)))
    assert "shadow mode" in text
    assert "Exposed Female Nipple" in text
    assert "actions" not in text


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            FetchBlocked("http://169.254.169.254/", "169.254.169.254"),
            "blocked address 169.254.169.254",
        ),
        (ImageRejected("not an image"), "not an image"),
        (FetchFailed("https://x/y", "image too large"), "image too large"),
        (
            DetectionFailed("InvalidImageFormatException", "Request has invalid image format"),
            "Rekognition could not read the image format",
        ),
        (
            DetectionFailed("AccessDeniedException", "not authorized", transient=False),
            "modbot is not allowed to call Rekognition (access denied)",
        ),
        (DetectionFailed("SomeNewException", "?"), "Rekognition error SomeNewException"),
    ],
)
def test_could_not_scan_for_automatic_scans(error: ScanFailed, reason: str) -> None:
    """Automatic scans: starts with "Could not scan", names file, poster and channel, reason."""
    message = valid(messages.could_not_scan(error, UPLOAD))
    assert message.text.startswith("Could not scan")
    assert message.text.endswith(f": {reason}")
    assert "<@U0POSTER>" in message.text
    assert "<#C0GENERAL>" in message.text
    assert "beach &lt;party&gt; &amp; more.png" in message.text


def test_detection_failures_are_put_into_words_here_not_in_the_error() -> None:
    """The error keeps Rekognition's code and message; the messages package says it in words."""
    error = DetectionFailed("ThrottlingException", "Rate exceeded", transient=True)
    assert (error.code, error.detail) == ("ThrottlingException", "Rate exceeded")
    assert messages.failure_reason(error) == "Rekognition is throttling requests"
    assert messages.failure_text(error) == "Rekognition is throttling requests: Rate exceeded"
    blocked = FetchBlocked("http://10.0.0.1/x", "10.0.0.1")
    assert messages.failure_text(blocked) == str(blocked)


def test_could_not_scan_for_moderate() -> None:
    """For /moderate the message names the URL and the plain reason."""
    error = FetchBlocked("http://10.0.0.1/x", "10.0.0.1")
    message = valid(messages.could_not_scan(error, COMMAND))
    assert message.text == (
        "Could not scan <https://img.example/cat.jpg?a=1&amp;b=&lt;2&gt;>: blocked address 10.0.0.1"
    )


def test_usage_policy_summary_and_ack() -> None:
    """Help lists the commands; /moderate policy shows resolved thresholds; ack names the URL."""
    help_text = all_text(valid(messages.usage()))
    for command in ("`/moderate &lt;url&gt;`", "`/moderate policy`", "`/moderate help`"):
        assert command in help_text
    summary = all_text(valid(messages.policy_summary(EXAMPLE, "C0123ABCD")))
    assert "Mode: *shadow*" in summary
    assert "Explicit: review 40%, flag 80%" in summary
    assert "Alcohol: ignored (this channel)" in summary
    assert messages.scanning("https://a/b?x=1&y=2") == "Scanning <https://a/b?x=1&amp;y=2> …"


@pytest.mark.parametrize(
    ("confidence", "shown", "cells"),
    [
        (97.25, "97.3%", 10),
        (97.35, "97.4%", 10),
        (0.0, "0.0%", 0),
        (100.0, "100.0%", 10),
        (44.9, "44.9%", 4),
        (45.0, "45.0%", 5),
    ],
)
def test_percent_and_bar(confidence: float, shown: str, cells: int) -> None:
    """Confidences show one decimal with %, and a ten-cell bar rounded to the nearest cell."""
    assert common.percent(confidence) == shown
    assert common.bar(confidence).count("▰") == cells
    assert len(common.bar(confidence)) == 10


def test_escape_blocks_mentions_and_links() -> None:
    """User text cannot smuggle <!channel> or links into mrkdwn."""
    assert common.escape("<!channel> & <http://x|y>") == "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"


def test_could_not_scan_all_summarises_many_and_keeps_one_as_is() -> None:
    """One failure: the ordinary note. Many: one note starting "Could not scan N images",
    naming each (up to the limit) with its reason, then the count of the rest."""
    one = (ImageRejected("not an image"), UPLOAD)
    assert messages.could_not_scan_all([one]) == messages.could_not_scan(*one)
    many = [(FetchFailed(f"https://x/{n}.png", "HTTP 404 from x"), UPLOAD) for n in range(25)]
    message = valid(messages.could_not_scan_all(many))
    assert message.text.startswith("Could not scan 25 images:")
    lines = message.text.splitlines()[1:]
    assert len(lines) == 21
    assert all(line.endswith(": HTTP 404 from x") for line in lines[:20])
    assert lines[-1] == "• … and 5 more"
    assert "… and 5 more" in all_text(message)
