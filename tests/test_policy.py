"""The policy engine (PRODUCT.md §4): decisions as tables, policy files, and properties."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core import taxonomy
from bot.core.errors import PolicyError
from bot.core.model import ChannelMode, Decision, Detection, Label
from bot.core.policy import (
    DEFAULT_POLICY,
    Policy,
    Rule,
    check_policy_file,
    decide,
    load_policy,
    parse_policy,
    severity,
    thresholds_for,
)

POLICIES = Path(__file__).parent / "data" / "policies"
EXAMPLE = load_policy(POLICIES / "example.toml")
SHADOW = "C0123ABCD"  # the example's shadow channel


def branch(name: str, confidence: float) -> list[Label]:
    """A label with every ancestor, all at the same confidence, as Rekognition returns them."""
    names = (name, *taxonomy.ancestors(name))
    return [
        Label(n, names[i + 1] if i + 1 < len(names) else "", len(names) - i, confidence)
        for i, n in enumerate(names)
    ]


def detection(*branches: tuple[str, float]) -> Detection:
    labels: dict[str, Label] = {}
    for name, confidence in branches:
        for label in branch(name, confidence):
            kept = labels.get(label.name)
            # A parent carries the largest confidence of its children.
            if kept is None or kept.confidence < label.confidence:
                labels[label.name] = label
    return Detection(labels=tuple(labels.values()), model_version="7.0")


STRICT_CHANNEL = parse_policy(
    {
        "labels": {"Explicit": {"review": 40, "flag": 80}},
        "channels": {
            "C0STRICT": {
                "review": 20,
                "flag": 60,
                "min_confidence": 10,
                "confirm": True,
                "labels": {"Explicit": {"flag": 50}, "Weapons": {"action": "ignore"}},
            },
            "C0OFF": {"mode": "off"},
        },
    },
    "test",
)

# (what it pins down, policy, channel, detection branches, decision, cause names)
Branches = tuple[tuple[str, float], ...]
DECISIONS: list[tuple[str, Policy, str | None, Branches, Decision, list[str]]] = [
    ("clean image is allowed", EXAMPLE, None, (), Decision.ALLOW, []),
    ("defaults: below review", DEFAULT_POLICY, None, (("Weapons", 49.9),), Decision.ALLOW, []),
    (
        "defaults: review band",
        DEFAULT_POLICY,
        None,
        (("Weapons", 50.0),),
        Decision.REVIEW,
        ["Weapons"],
    ),
    (
        "defaults: flag at 90",
        DEFAULT_POLICY,
        None,
        (("Weapons", 90.0),),
        Decision.FLAG,
        ["Weapons"],
    ),
    (
        "stricter L1 covers its L3: review at 40",
        EXAMPLE,
        None,
        (("Exposed Female Nipple", 45.0),),
        Decision.REVIEW,
        ["Exposed Female Nipple"],
    ),
    (
        "stricter L1 covers its L3: flag at 80",
        EXAMPLE,
        None,
        (("Exposed Female Nipple", 85.0),),
        Decision.FLAG,
        ["Exposed Female Nipple"],
    ),
    (
        "L3 carve-out under a ruled L1/L2 is ignored",
        EXAMPLE,
        None,
        (("Exposed Male Nipple", 99.0),),
        Decision.ALLOW,
        [],
    ),
    (
        "carve-out does not hide a sibling branch",
        EXAMPLE,
        None,
        (("Exposed Male Nipple", 99.0), ("Implied Nudity", 60.0)),
        Decision.REVIEW,
        ["Implied Nudity"],
    ),
    (
        "ignored L1 covers its L2",
        EXAMPLE,
        None,
        (("Female Swimwear or Underwear", 99.0),),
        Decision.ALLOW,
        [],
    ),
    (
        "parent with two children: both evaluated, flag wins",
        EXAMPLE,
        None,
        (("Exposed Female Nipple", 60.0), ("Exposed Male Genitalia", 85.0)),
        Decision.FLAG,
        ["Exposed Male Genitalia"],
    ),
    (
        "parent with two children: causes are all that reached review",
        EXAMPLE,
        None,
        (("Exposed Female Nipple", 60.0), ("Exposed Male Genitalia", 45.0)),
        Decision.REVIEW,
        ["Exposed Female Nipple", "Exposed Male Genitalia"],
    ),
    (
        "channel label rule ignores in that channel",
        EXAMPLE,
        SHADOW,
        (("Drinking", 95.0),),
        Decision.ALLOW,
        [],
    ),
    (
        "channel label rule does not leak to other channels",
        EXAMPLE,
        "C0OTHER",
        (("Drinking", 95.0),),
        Decision.FLAG,
        ["Drinking"],
    ),
    (
        "channel rule beats global rule at the same label",
        STRICT_CHANNEL,
        "C0STRICT",
        (("Sex Toys", 55.0),),
        Decision.FLAG,
        ["Sex Toys"],
    ),
    (
        "channel keeps the global label's review where it sets only flag",
        STRICT_CHANNEL,
        "C0STRICT",
        (("Sex Toys", 45.0),),
        Decision.REVIEW,
        ["Sex Toys"],
    ),
    (
        "global L1 rule beats channel defaults",
        STRICT_CHANNEL,
        "C0STRICT",
        (("Sex Toys", 30.0),),
        Decision.ALLOW,
        [],
    ),
    (
        "channel defaults beat global defaults",
        STRICT_CHANNEL,
        "C0STRICT",
        (("Middle Finger", 25.0),),
        Decision.REVIEW,
        ["Middle Finger"],
    ),
    (
        "channel min_confidence lets low labels through",
        STRICT_CHANNEL,
        "C0STRICT",
        (("Middle Finger", 15.0),),
        Decision.ALLOW,
        [],
    ),
    (
        "labels under min_confidence are ignored",
        parse_policy({"defaults": {"review": 10, "min_confidence": 40}}, "t"),
        None,
        (("Middle Finger", 35.0),),
        Decision.ALLOW,
        [],
    ),
    (
        "Drug/Drugs alias: a rule on either spelling applies",
        parse_policy(
            {"labels": {"Drug & Tobacco Paraphernalia & Use": {"review": 10, "flag": 20}}}, "t"
        ),
        None,
        (("Smoking", 45.0),),
        Decision.FLAG,
        ["Smoking"],
    ),
    (
        "thresholds on a child re-enable it under an ignored parent",
        parse_policy(
            {
                "labels": {
                    "Swimwear or Underwear": {"action": "ignore"},
                    "Male Swimwear or Underwear": {"review": 30},
                }
            },
            "t",
        ),
        None,
        (("Male Swimwear or Underwear", 40.0), ("Female Swimwear or Underwear", 99.0)),
        Decision.REVIEW,
        ["Male Swimwear or Underwear"],
    ),
    (
        "action alert under an ignored parent re-enables with inherited thresholds",
        parse_policy(
            {"labels": {"Violence": {"action": "ignore"}, "Weapons": {"action": "alert"}}}, "t"
        ),
        None,
        (("Weapons", 95.0), ("Physical Violence", 95.0)),
        Decision.FLAG,
        ["Weapons"],
    ),
]


@pytest.mark.parametrize(
    ("policy", "channel", "branches", "expected", "causes"),
    [case[1:] for case in DECISIONS],
    ids=[case[0] for case in DECISIONS],
)
def test_decide_table(
    policy: Policy,
    channel: str | None,
    branches: tuple[tuple[str, float], ...],
    expected: Decision,
    causes: list[str],
) -> None:
    """Each row of the table pins one rule of §4 (the row id says which)."""
    outcome = decide(policy, detection(*branches), channel)
    assert outcome.decision is expected
    assert sorted(c.name for c in outcome.causes) == sorted(causes)


def test_visible_parent_is_evaluated_when_children_are_below_min_confidence() -> None:
    """A child under min_confidence is dropped first, so its returned parent is evaluated."""
    labels = (
        Label("Explicit", "", 1, 85.0),
        Label("Explicit Nudity", "Explicit", 2, 85.0),
        Label("Exposed Female Nipple", "Explicit Nudity", 3, 30.0),
    )
    outcome = decide(EXAMPLE, Detection(labels, "7.0"), None)
    assert outcome.decision is Decision.FLAG
    assert [c.name for c in outcome.causes] == ["Explicit Nudity"]


def test_v6_labels_fall_back_to_defaults() -> None:
    """v6 names have no v7 rules, so their own parent chain and the defaults decide."""
    labels = (Label("Suggestive", "", 1, 70.0), Label("Revealing Clothes", "Suggestive", 2, 70.0))
    assert decide(EXAMPLE, Detection(labels, "6.1"), None).decision is Decision.REVIEW


@pytest.mark.parametrize(
    ("channel", "mode"),
    [(None, ChannelMode.ENFORCE), ("C0OTHER", ChannelMode.ENFORCE), (SHADOW, ChannelMode.SHADOW)],
)
def test_mode_comes_from_the_channel(channel: str | None, mode: ChannelMode) -> None:
    """A channel's mode is carried on the outcome; unlisted channels enforce."""
    outcome = decide(EXAMPLE, detection(("Weapons", 95.0)), channel)
    assert outcome.mode is mode
    assert outcome.decision is Decision.FLAG
    assert outcome.alerts is (mode is ChannelMode.ENFORCE)


def test_off_channel_still_decides_and_never_alerts() -> None:
    """An off channel is not scanned automatically, but a decision made there never alerts."""
    outcome = decide(STRICT_CHANNEL, detection(("Weapons", 95.0)), "C0OFF")
    assert (outcome.mode, outcome.decision, outcome.alerts) == (
        ChannelMode.OFF,
        Decision.FLAG,
        False,
    )
    assert STRICT_CHANNEL.mode_for("C0OFF") is ChannelMode.OFF


def test_confirm_per_channel() -> None:
    """confirm comes from the channel when set, else from the defaults."""
    assert decide(STRICT_CHANNEL, detection(("Weapons", 95.0)), "C0STRICT").confirm is True
    assert decide(STRICT_CHANNEL, detection(("Weapons", 95.0)), None).confirm is False


def test_call_min_confidence_is_the_lowest_anywhere() -> None:
    """Rekognition is called once with the lowest min_confidence any channel uses."""
    assert DEFAULT_POLICY.call_min_confidence == 40
    assert STRICT_CHANNEL.call_min_confidence == 10


def test_default_policy() -> None:
    """Without a file the built-in policy is review 50, flag 90, min 40, no confirmation."""
    assert load_policy(None) is DEFAULT_POLICY
    p = DEFAULT_POLICY
    assert (p.review, p.flag, p.min_confidence, p.confirm) == (50, 90, 40, False)
    assert not p.labels
    assert not p.channels


def test_example_file_loads() -> None:
    """The PRODUCT §4 example loads with canonical names and its channel override."""
    assert dict(EXAMPLE.labels) == {
        "Explicit": Rule(review=40, flag=80),
        "Swimwear or Underwear": Rule(action="ignore"),
        "Exposed Male Nipple": Rule(action="ignore"),
    }
    assert EXAMPLE.channels[SHADOW].mode is ChannelMode.SHADOW
    assert dict(EXAMPLE.channels[SHADOW].labels) == {"Alcohol": Rule(action="ignore")}


def test_thresholds_for_channel() -> None:
    """thresholds_for resolves defaults and every ruled label for one channel."""
    t = thresholds_for(STRICT_CHANNEL, "C0STRICT")
    assert (t.mode, t.review, t.flag, t.min_confidence, t.confirm) == (
        ChannelMode.ENFORCE,
        20,
        60,
        10,
        True,
    )
    rules = {r.label: r for r in t.labels}
    assert (rules["Explicit"].review, rules["Explicit"].flag) == (40, 50)
    assert rules["Explicit"].channel_rule
    assert rules["Weapons"].ignored


# --- policy files ---------------------------------------------------------------------------

INVALID: list[tuple[str, str, str]] = [
    ("[defaults]\nreveiw = 50\n", "defaults.reveiw", 'did you mean "review"'),
    ("[default]\nreview = 50\n", "default", 'did you mean "defaults"'),
    ('[defaults]\nreview = "high"\n', "defaults.review", "must be a number"),
    ("[defaults]\nflag = true\n", "defaults.flag", "must be a number"),
    ("[defaults]\nflag = 120\n", "defaults.flag", "from 0 to 100"),
    ("[defaults]\nmin_confidence = -1\n", "defaults.min_confidence", "from 0 to 100"),
    ("[defaults]\nflag = nan\n", "defaults.flag", "from 0 to 100"),
    ("[defaults]\nreview = 95\n", "defaults.review", "above flag"),
    ('[defaults]\nconfirm = "yes"\n', "defaults.confirm", "true or false"),
    ('[labels."Explicit"]\nreview = 85\nflag = 80\n', 'labels."Explicit".review', "above flag"),
    ('[labels."Explicit"]\nflag = 180\n', 'labels."Explicit".flag', "from 0 to 100"),
    ('[labels."Explicit"]\naction = "block"\n', 'labels."Explicit".action', "unknown action"),
    (
        '[labels."Explicit"]\naction = "ignore"\nflag = 80\n',
        'labels."Explicit".action',
        "cannot be combined",
    ),
    ('[labels."Explicit"]\nthreshold = 80\n', 'labels."Explicit".threshold', "unknown key"),
    ('[labels."Explcit"]\nflag = 80\n', 'labels."Explcit"', 'did you mean "Explicit"'),
    (
        '[labels."Exposed Male Nipples"]\naction = "ignore"\n',
        'labels."Exposed Male Nipples"',
        'did you mean "Exposed Male Nipple"',
    ),
    (
        '[labels."explicit"]\nflag = 80\n[labels."Explicit"]\nflag = 70\n',
        'labels."Explicit"',
        "given twice",
    ),
    ("labels = 5\n", "labels", "must be a table"),
    ('labels."Explicit" = 5\n', 'labels."Explicit"', "must be a table"),
    ('[channels.C0123ABCD]\nmode = "shadwo"\n', "channels.C0123ABCD.mode", "unknown mode"),
    ("[channels.C0123ABCD]\nflag = 101\n", "channels.C0123ABCD.flag", "from 0 to 100"),
    ("[channels.C0123ABCD]\nreview = 70\nflag = 60\n", "channels.C0123ABCD.review", "above flag"),
    ("[channels.C0123ABCD]\ncolour = 1\n", "channels.C0123ABCD.colour", "unknown key"),
    (
        '[channels.C0123ABCD]\nlabels."Alcohols".action = "ignore"\n',
        'channels.C0123ABCD.labels."Alcohols"',
        'did you mean "Alcohol"',
    ),
    (
        '[channels.C0123ABCD]\nlabels."Alcohol".action = 1\n',
        'channels.C0123ABCD.labels."Alcohol".action',
        "unknown action",
    ),
    ('[channels."general"]\nmode = "off"\n', "channels.general", "not a Slack channel id"),
    ("[defaults]\nreview = 50\nflag = = 90\n", "line 3", "invalid TOML"),
]


@pytest.mark.parametrize(("content", "key", "reason"), INVALID, ids=[c[1] for c in INVALID])
def test_invalid_policy_names_the_key(tmp_path: Path, content: str, key: str, reason: str) -> None:
    """Every invalid file stops loading with the file, the dotted key and the reason."""
    path = tmp_path / "policy.toml"
    path.write_text(content)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert (caught.value.file, caught.value.key) == (str(path), key)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}: {key}: ")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("invalid_label_typo.toml", 'labels."Explcit"'),
        ("invalid_review_above_flag.toml", 'labels."Explicit".review'),
        ("invalid_syntax.toml", "line 3"),
        ("invalid_channel_mode.toml", "channels.C0123ABCD.mode"),
    ],
)
def test_policy_check_cli_helper(name: str, key: str) -> None:
    """`modbot policy check` exits non-zero naming the key for each invalid sample file."""
    code, message = check_policy_file(POLICIES / name)
    assert code == 1
    assert f": {key}: " in message


def test_policy_check_accepts_the_example() -> None:
    """`modbot policy check` exits 0 for the PRODUCT example."""
    code, message = check_policy_file(POLICIES / "example.toml")
    assert code == 0
    assert "OK" in message


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    """A missing file is reported like any other policy problem, not as a stack trace."""
    code, message = check_policy_file(tmp_path / "nope.toml")
    assert code == 1
    assert "cannot read" in message


def test_defaults_mode_applies_to_every_channel() -> None:
    """`mode` in [defaults] sets the mode of channels without their own."""
    data = {"defaults": {"mode": "shadow"}, "channels": {"C1X": {"mode": "enforce"}}}
    p = parse_policy(data, "t")
    assert p.mode_for(None) is ChannelMode.SHADOW
    assert p.mode_for("C0OTHER") is ChannelMode.SHADOW
    assert p.mode_for("C1X") is ChannelMode.ENFORCE


# --- properties -----------------------------------------------------------------------------

LEAVES = [n for n in taxonomy.ALL_LABELS if not taxonomy.children(n)]
confidences = st.floats(min_value=0, max_value=100, allow_nan=False)
detections = st.dictionaries(st.sampled_from(LEAVES), confidences, max_size=6)
thresholds = st.integers(min_value=0, max_value=100)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    labels: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(taxonomy.ALL_LABELS), max_size=5, unique=True)):
        if draw(st.booleans()):
            labels[name] = {"action": "ignore"}
        else:
            low, high = sorted((draw(thresholds), draw(thresholds)))
            labels[name] = {"review": low, "flag": high}
    low, high = sorted((draw(thresholds), draw(thresholds)))
    defaults = {"review": low, "flag": high, "min_confidence": draw(thresholds)}
    return parse_policy({"defaults": defaults, "labels": labels}, "hypothesis")


def _decision(policy: Policy, branches: dict[str, float]) -> Decision:
    return decide(policy, detection(*branches.items()), None).decision


@given(policies(), detections, st.sampled_from(LEAVES), st.floats(0, 100))
def test_decision_is_monotone_in_confidence(
    policy: Policy, branches: dict[str, float], leaf: str, extra: float
) -> None:
    """Raising one branch's confidence never makes the decision milder."""
    before = _decision(policy, branches)
    raised = {**branches, leaf: min(100.0, branches.get(leaf, 0.0) + extra)}
    assert severity(_decision(policy, raised)) >= severity(before)


@given(policies(), detections, st.sampled_from(taxonomy.ALL_LABELS))
def test_ignoring_a_label_never_makes_it_stricter(
    policy: Policy, branches: dict[str, float], name: str
) -> None:
    """Adding action = "ignore" for any label never makes the decision stricter."""
    before = _decision(policy, branches)
    ignoring = dataclasses.replace(policy, labels={**policy.labels, name: Rule(action="ignore")})
    assert severity(_decision(ignoring, branches)) <= severity(before)


@given(policies(), st.sampled_from([None, "C0123ABCD"]))
def test_clean_detection_is_always_allowed(policy: Policy, channel: str | None) -> None:
    """A detection without labels is allowed under any policy, with no causes."""
    outcome = decide(policy, Detection((), "7.0"), channel)
    assert outcome.decision is Decision.ALLOW
    assert outcome.causes == ()
