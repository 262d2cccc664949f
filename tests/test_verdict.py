"""Verdict rules: Slack quorum and the A2I majority rule of PRODUCT §6.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.core.verdict import a2i_answers, a2i_verdict, quorum_outcome, tally


@pytest.mark.parametrize(
    ("votes", "quorum", "expected"),
    [
        ({}, 1, None),
        ({"U1": True}, 1, True),
        ({"U1": False}, 1, False),
        ({"U1": True}, 2, None),
        ({"U1": True, "U2": False}, 2, None),
        ({"U1": True, "U2": True}, 2, True),
        ({"U1": False, "U2": True, "U3": False}, 2, False),
    ],
)
def test_quorum_of_agreeing_votes_decides(
    votes: dict[str, bool], quorum: int, expected: bool | None
) -> None:
    """The outcome with `quorum` agreeing votes is the verdict; otherwise the review stays open."""
    assert tally(votes, quorum) is expected


@pytest.mark.parametrize(
    ("answers", "violation", "labels"),
    [
        ([], False, ()),  # no answers at all: nothing wrong
        ([[]], False, ()),  # one worker said "none"
        ([["Explicit"]], True, ("Explicit",)),
        ([["Explicit"], []], True, ("Explicit",)),  # half selected: violation
        ([["Explicit"], [], []], False, ()),  # a third selected: no violation
        ([["Explicit", "Explicit Nudity"], ["Explicit"], []], True, ("Explicit",)),
        ([["A"], ["B"], ["A", "B"]], True, ("A", "B")),
        ([["A", "A"], [], []], False, ()),  # a worker counts once per label
    ],
)
def test_a2i_majority_rule(
    answers: list[list[str]], violation: bool, labels: tuple[str, ...]
) -> None:
    """At least one and at least half of the answers must select a label; labels need half."""
    assert a2i_verdict(answers) == (violation, labels)


def test_answers_are_read_from_a_real_output_layout() -> None:
    """The selected names come from answerContent[request source].moderationLabels."""
    output = json.loads((Path(__file__).parent / "data" / "a2i_output.json").read_text())
    assert a2i_answers(output) == [["Swimwear or Underwear", "Female Swimwear or Underwear"], []]


def test_quorum_counts_only_reviewers_still_allowed() -> None:
    """A vote of someone no longer allowed does not count; the deciders are named in order."""
    votes = {"U1": True, "U2": True, "U3": False}
    assert quorum_outcome(votes, 2, None) == (True, ("U1", "U2"))
    assert quorum_outcome(votes, 2, frozenset({"U2", "U3"})) is None
    assert quorum_outcome(votes, 1, frozenset({"U3"})) == (False, ("U3",))


@pytest.mark.parametrize(
    "output",
    [
        [],
        {"humanAnswers": "junk"},
        {"humanAnswers": ["junk"]},
        {"humanAnswers": [{"answerContent": "junk"}]},
        {
            "humanAnswers": [
                {"answerContent": {"AWS/Rekognition/DetectModerationLabels/Image/V3": 1}}
            ]
        },
        {
            "humanAnswers": [
                {"answerContent": {"x": {"moderationLabels": ["Explicit"]}}},
            ]
        },
    ],
)
def test_odd_a2i_outputs_are_refused_not_guessed(output: object) -> None:
    """An output that is not A2I's shape raises ValueError (so the review fails visibly)."""
    with pytest.raises(ValueError, match=r"answer|humanAnswers|object"):
        a2i_answers(output)
