"""A2I HumanLoopActivationConditions generated from the policy's global review band."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core import taxonomy
from bot.core.model import Decision, Detection, Label
from bot.core.policy import (
    DEFAULT_POLICY,
    MAX_CONDITIONS_CHARS,
    Policy,
    a2i_activation_conditions,
    decide,
    load_policy,
    parse_policy,
)

EXAMPLE = load_policy(Path(__file__).parent / "data" / "policies" / "example.toml")
COMPARATORS = {
    "ConfidenceEquals",
    "ConfidenceLessThan",
    "ConfidenceLessThanEquals",
    "ConfidenceGreaterThan",
    "ConfidenceGreaterThanEquals",
}


def check_grammar(node: dict[str, Any], depth: int = 0) -> None:
    """Assert aws.md §3.2: And/Or with >= 2 children, <= 2 nesting levels, valid leaves."""
    if "And" in node or "Or" in node:
        assert len(node) == 1
        children = node.get("And", node.get("Or"))
        assert isinstance(children, list)
        assert len(children) >= 2
        assert depth < 2, "more than two levels of nesting"
        for child in children:
            check_grammar(child, depth + 1)
        return
    assert set(node) == {"ConditionType", "ConditionParameters"}
    assert node["ConditionType"] == "ModerationLabelConfidenceCheck"
    params = node["ConditionParameters"]
    comparators = set(params) - {"ModerationLabelName"}
    assert len(comparators) == 1
    assert comparators <= COMPARATORS
    value = params[comparators.pop()]
    assert isinstance(value, int | float)
    assert 0 <= value <= 100
    name = params["ModerationLabelName"]
    assert name == "*" or taxonomy.is_known(name)


def check_all(conditions: dict[str, Any]) -> None:
    assert set(conditions) == {"Conditions"}
    assert conditions["Conditions"]
    for node in conditions["Conditions"]:
        check_grammar(node)
    assert len(json.dumps(conditions, indent=2)) <= MAX_CONDITIONS_CHARS


def bands(conditions: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Name -> (lower, upper) from the And pairs (evaluator-free reading of the structure)."""
    found: dict[str, tuple[float, float]] = {}
    for node in conditions["Conditions"]:
        leaves = node.get("And", [node])
        names = {leaf["ConditionParameters"]["ModerationLabelName"] for leaf in leaves}
        assert len(names) == 1, "an And must test one label, not pair two"
        low, high = 0.0, 100.0
        for leaf in leaves:
            params = leaf["ConditionParameters"]
            low = params.get("ConfidenceGreaterThanEquals", low)
            high = params.get("ConfidenceLessThan", high)
        found[names.pop()] = (low, high)
    return found


def test_default_policy_is_the_aws_reference_shape() -> None:
    """Without label rules the conditions are one "*" band: 50 <= confidence < 90."""
    assert a2i_activation_conditions(DEFAULT_POLICY) == {
        "Conditions": [
            {
                "And": [
                    {
                        "ConditionType": "ModerationLabelConfidenceCheck",
                        "ConditionParameters": {
                            "ModerationLabelName": "*",
                            "ConfidenceGreaterThanEquals": 50,
                        },
                    },
                    {
                        "ConditionType": "ModerationLabelConfidenceCheck",
                        "ConditionParameters": {
                            "ModerationLabelName": "*",
                            "ConfidenceLessThan": 90,
                        },
                    },
                ]
            }
        ]
    }


def test_example_policy_structure() -> None:
    """The example's bands: Explicit 40..80, carve-outs and ignored subtrees absent."""
    conditions = a2i_activation_conditions(EXAMPLE)
    check_all(conditions)
    found = bands(conditions)
    assert found["Explicit"] == (40, 80)
    assert found["Violence"] == (50, 90)
    # The carve-out's subtree is split so its parents (returned with it) are not tested.
    assert "Exposed Male Nipple" not in found
    assert "Non-Explicit Nudity" not in found
    assert "Non-Explicit Nudity of Intimate parts and Kissing" not in found
    assert found["Implied Nudity"] == (50, 90)
    # Names are written in every spelling AWS uses, because A2I compares them exactly.
    assert found["Kissing on the Lips"] == found["Kissing on the lips"] == (50, 90)
    assert not {n for n in found if taxonomy.key(n).startswith("swimwear")}
    assert "Female Swimwear or Underwear" not in found
    # Channel rules (Alcohol ignored in one channel) are not part of the global band.
    assert found["Alcohol"] == (50, 90)


def test_lower_bound_respects_min_confidence() -> None:
    """A review threshold under min_confidence starts at min_confidence (the bot ignores below)."""
    p = parse_policy(
        {"defaults": {"review": 10, "min_confidence": 30}, "labels": {"Gambling": {"flag": 60}}},
        "t",
    )
    assert bands(a2i_activation_conditions(p))["Gambling"] == (30, 60)


def test_empty_band_and_all_ignored_never_open_a_loop() -> None:
    """When no label can open a loop the single condition can never be true."""
    labels = {l1: {"action": "ignore"} for l1 in taxonomy.TREE}
    p = parse_policy({"labels": labels}, "t")
    never = {
        "Conditions": [
            {
                "ConditionType": "ModerationLabelConfidenceCheck",
                "ConditionParameters": {"ModerationLabelName": "*", "ConfidenceLessThan": 0},
            }
        ]
    }
    assert a2i_activation_conditions(p) == never
    flat = parse_policy({"defaults": {"review": 90, "flag": 90}}, "t")
    assert a2i_activation_conditions(flat) == never


def test_zero_review_is_a_single_check() -> None:
    """A band starting at 0 is one LessThan check, not an And with a single child."""
    p = parse_policy({"defaults": {"review": 0, "min_confidence": 0}}, "t")
    assert a2i_activation_conditions(p)["Conditions"] == [
        {
            "ConditionType": "ModerationLabelConfidenceCheck",
            "ConditionParameters": {"ModerationLabelName": "*", "ConfidenceLessThan": 90},
        }
    ]


def test_every_label_ruled_still_fits() -> None:
    """A rule on every label falls back to coarser bands rather than exceed 10,240 chars."""
    labels = {
        name: {"review": 10 + i % 7, "flag": 60 + i % 5}
        for i, name in enumerate(taxonomy.ALL_LABELS)
    }
    check_all(a2i_activation_conditions(parse_policy({"labels": labels}, "t")))


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    labels: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(taxonomy.ALL_LABELS), max_size=30, unique=True)):
        if draw(st.booleans()):
            labels[name] = {"action": draw(st.sampled_from(["ignore", "alert"]))}
        else:
            low = draw(st.integers(0, 100))
            labels[name] = {"review": low, "flag": draw(st.integers(low, 100))}
    return parse_policy({"labels": labels}, "hypothesis")


@given(policies())
def test_generated_conditions_respect_a2i_grammar(policy: Policy) -> None:
    """Any policy gives conditions within A2I's grammar, nesting and size limits."""
    check_all(a2i_activation_conditions(policy))


@pytest.mark.parametrize("name", ["Explicit", "Exposed Male Nipple", "Weapons"])
@given(confidence=st.floats(0, 100))
def test_single_branch_agrees_with_decide(name: str, confidence: float) -> None:
    """For one fully returned branch, a named band holds exactly when the bot says review."""
    names = (name, *taxonomy.ancestors(name))
    labels = tuple(
        Label(n, names[i + 1] if i + 1 < len(names) else "", len(names) - i, confidence)
        for i, n in enumerate(names)
    )
    found = bands(a2i_activation_conditions(EXAMPLE))
    in_band = any(low <= confidence < high for n, (low, high) in found.items() if n in names)
    review = decide(EXAMPLE, Detection(labels, "7.0"), None).decision is Decision.REVIEW
    assert in_band == review


def _printed_conditions(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    from bot.__main__ import main

    assert main(["policy", "a2i-conditions", *argv]) == 0
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    return printed


def test_a2i_conditions_reads_the_policy_file_named_in_dot_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`modbot policy a2i-conditions` takes MODBOT_POLICY_FILE from `.env`, as `serve` does;
    a file given on the command line wins, and with neither the default policy is used."""
    example = Path(__file__).parent / "data" / "policies" / "example.toml"
    assert _printed_conditions([], capsys) == a2i_activation_conditions(DEFAULT_POLICY)
    (tmp_path / ".env").write_text(f"MODBOT_POLICY_FILE={example}\n")  # the tests run in tmp_path
    assert _printed_conditions([], capsys) == a2i_activation_conditions(EXAMPLE)
    flat = tmp_path / "flat.toml"
    flat.write_text("[defaults]\nreview = 90\nflag = 90\n")
    assert _printed_conditions([str(flat)], capsys) == a2i_activation_conditions(load_policy(flat))
