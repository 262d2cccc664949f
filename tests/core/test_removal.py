"""The `remove` policy key and when a scan's image is removed (pure, table-tested)."""

from __future__ import annotations

import pytest

from bot.core import taxonomy
from bot.core.messages import appeal as appeal_texts
from bot.core.messages import removal as texts
from bot.core.model import (
    ChannelMode,
    Decision,
    History,
    ImageRef,
    Label,
    Origin,
    Outcome,
    PriorVerdict,
    ScanRequest,
    Trigger,
)
from bot.core.policy import RemoveWhen, parse_policy, remove_for
from bot.core.removal import Target, Why, removal_at_scan, removal_at_verdict, target_of

POLICY = parse_policy(
    {
        "defaults": {"remove": "on_violation"},
        "labels": {
            "Explicit": {"remove": "on_flag"},
            "Exposed Male Nipple": {"remove": "never"},
            "Alcohol": {"action": "ignore"},
        },
        "channels": {
            "C0QUIET": {"remove": "never", "labels": {"Weapons": {"remove": "on_flag"}}},
        },
    },
    "test.toml",
)


@pytest.mark.parametrize(
    ("channel", "labels", "expected"),
    [
        (None, [], RemoveWhen.ON_VIOLATION),  # no labels: the default
        (None, ["Weapons"], RemoveWhen.ON_VIOLATION),
        (None, ["Exposed Female Genitalia"], RemoveWhen.ON_FLAG),  # L3 under Explicit's rule
        (None, ["Exposed Male Nipple"], RemoveWhen.NEVER),  # an L3 carve-out
        (None, ["Exposed Male Nipple", "Weapons"], RemoveWhen.ON_VIOLATION),  # the strictest
        ("C0QUIET", ["Drugs & Tobacco"], RemoveWhen.NEVER),  # the channel's default
        ("C0QUIET", ["Weapons"], RemoveWhen.ON_FLAG),  # the channel's label rule
        ("C0QUIET", ["Explicit Nudity"], RemoveWhen.ON_FLAG),  # global label beats channel default
    ],
)
def test_remove_is_resolved_like_the_other_keys(
    channel: str | None, labels: list[str], expected: RemoveWhen
) -> None:
    paths = [(name, *taxonomy.ancestors(name)) for name in labels]
    assert remove_for(POLICY, channel, paths) is expected


def test_asks_removal_sees_every_rule() -> None:
    assert POLICY.asks_removal
    assert not parse_policy({}, "x").asks_removal
    nested = parse_policy(
        {"channels": {"C0A": {"labels": {"Weapons": {"remove": "on_flag"}}}}}, "x"
    )
    assert nested.asks_removal


def _label(name: str) -> Label:
    return Label(name, "", 1, 95.0)


@pytest.mark.parametrize(
    ("outcome", "history", "expected"),
    [
        (Outcome(Decision.FLAG, (_label("Explicit"),)), History(), Why.FLAG),
        (Outcome(Decision.FLAG, (_label("Weapons"),)), History(), None),  # on_violation only
        (Outcome(Decision.REVIEW, (_label("Explicit"),)), History(), None),
        (
            Outcome(Decision.FLAG, (_label("Weapons"),)),
            History(verdict=PriorVerdict(True, ("Weapons",))),
            Why.REPOST,
        ),
        (
            Outcome(Decision.FLAG, (_label("Explicit"),), ChannelMode.SHADOW),
            History(),
            None,  # shadow mode never acts
        ),
        (
            Outcome(Decision.FLAG, (_label("Exposed Male Nipple"),)),
            History(verdict=PriorVerdict(True, ("Exposed Male Nipple",))),
            None,  # remove = never for that label
        ),
    ],
)
def test_removal_at_scan(outcome: Outcome, history: History, expected: Why | None) -> None:
    assert removal_at_scan(POLICY, outcome, history, None) is expected


def test_removal_at_verdict() -> None:
    assert removal_at_verdict(POLICY, None, ["Weapons"])
    assert not removal_at_verdict(POLICY, None, ["Exposed Male Nipple"])
    assert not removal_at_verdict(POLICY, "C0QUIET", [])


def test_target_of_an_upload_a_link_and_a_command() -> None:
    upload = ScanRequest(
        ImageRef(file_id="F1", name="a.png"), Origin(Trigger.UPLOAD, "C1", "U1", "1.2"), "k"
    )
    link = ScanRequest(
        ImageRef(url="https://x/a.png"), Origin(Trigger.LINK, "C1", "U1", "3.4"), "k"
    )
    command = ScanRequest(ImageRef(url="https://x/a.png"), Origin(Trigger.COMMAND, "C1", "U1"), "k")
    assert target_of(upload) == Target("C1", file_id="F1", message_ts="1.2")
    assert target_of(link) == Target("C1", message_ts="3.4")
    assert target_of(command) is None


@pytest.mark.parametrize(
    ("error", "words"),
    [
        ("cant_delete_file", "Owner or Admin"),
        ("missing_scope", "files:write"),
        ("not_allowed_token_type", "xoxp-"),
        ("not_authed", "SLACK_ADMIN_TOKEN"),
        ("restricted_action", "workspace settings"),
        ("something_new", "something_new"),
    ],
)
def test_refusals_in_plain_words_with_a_fix(error: str, words: str) -> None:
    text = texts.could_not_remove("the upload", texts.removal_failure(error)).text
    assert text.startswith("Could not remove:")
    assert words in text


def test_appeal_reasons_are_validated() -> None:
    assert appeal_texts.reason_problem("") is not None
    assert appeal_texts.reason_problem(" \n ") is not None
    assert appeal_texts.reason_problem("x" * 3000) is not None
    assert appeal_texts.reason_problem("x" * 2999) is None
    assert appeal_texts.appeal_verdict(True, ["U1"]).text.startswith("Appeal verdict: upheld")
    assert appeal_texts.appeal_verdict(False, ["U1"]).text.startswith("Appeal verdict: overturned")
