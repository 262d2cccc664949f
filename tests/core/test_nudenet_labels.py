"""NudeNet's classes mapped onto the v7 taxonomy: the table, the parents, the cut-offs."""

from __future__ import annotations

import pytest

from bot.core import taxonomy
from bot.core.model import Label
from bot.core.nudenet_labels import DROPPED, SCORE_CUTOFF, TABLE, to_labels
from bot.core.policy import DEFAULT_POLICY, decide

# Every class NudeNet 3.4's 320n model reports, in its own order (nudenet/nudenet.py, __labels).
NUDENET_CLASSES = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)


def raw(cls: str, score: float) -> dict[str, object]:
    """One entry of NudeNet's output, as NudeDetector.detect returns it."""
    return {"class": cls, "score": score, "box": [10, 20, 30, 40]}


def test_every_class_is_either_mapped_or_dropped_and_none_is_both() -> None:
    """Each of the model's 18 classes has exactly one fate."""
    assert set(TABLE) | DROPPED == set(NUDENET_CLASSES)
    assert not set(TABLE) & DROPPED


@pytest.mark.parametrize(("cls", "label"), sorted(TABLE.items()))
def test_every_mapped_label_is_a_deepest_v7_label(cls: str, label: str) -> None:
    """A mapped class names a v7 label in its canonical spelling, one with no children."""
    assert taxonomy.is_known(label)
    assert taxonomy.canonical(label) == label
    assert taxonomy.children(label) == ()


def test_an_exposed_class_becomes_its_whole_v7_path() -> None:
    """FEMALE_GENITALIA_EXPOSED at 0.87 is Explicit › Explicit Nudity › Exposed Female Genitalia
    at 87% each, with the parent links Rekognition would give."""
    labels = to_labels([raw("FEMALE_GENITALIA_EXPOSED", 0.87)], min_confidence=0)
    assert labels == (
        Label("Explicit", "", 1, 87.0),
        Label("Explicit Nudity", "Explicit", 2, 87.0),
        Label("Exposed Female Genitalia", "Explicit Nudity", 3, 87.0),
    )


def test_parents_take_the_highest_confidence_of_their_children() -> None:
    """Two children of Explicit Nudity: the L2 and L1 carry the higher one, each L3 its own."""
    labels = to_labels(
        [raw("BUTTOCKS_EXPOSED", 0.62), raw("FEMALE_BREAST_EXPOSED", 0.91)], min_confidence=0
    )
    by_name = {label.name: label.confidence for label in labels}
    assert by_name == {
        "Explicit": 91.0,
        "Explicit Nudity": 91.0,
        "Exposed Buttocks or Anus": 62.0,
        "Exposed Female Nipple": 91.0,
    }


def test_two_classes_on_one_label_keep_the_higher_score() -> None:
    """ANUS_EXPOSED and BUTTOCKS_EXPOSED are both Exposed Buttocks or Anus: one label, the max."""
    labels = to_labels(
        [raw("ANUS_EXPOSED", 0.55), raw("BUTTOCKS_EXPOSED", 0.75), raw("ANUS_EXPOSED", 0.6)],
        min_confidence=0,
    )
    assert [(label.name, label.confidence) for label in labels if label.level == 3] == [
        ("Exposed Buttocks or Anus", 75.0)
    ]


def test_dropped_and_unknown_classes_give_no_label() -> None:
    """Faces, feet and a class a newer model might add are not moderation labels."""
    found = [raw(cls, 0.99) for cls in sorted(DROPPED)] + [raw("ELBOW_EXPOSED", 0.99)]
    assert to_labels(found, min_confidence=0) == ()


def test_scores_under_the_cut_off_or_min_confidence_are_dropped() -> None:
    """The calibrated cut-off (0.54 on two skin-coloured ellipses is noise) and the call's
    MinConfidence both apply."""
    assert SCORE_CUTOFF > 0.54
    below = [raw("BUTTOCKS_EXPOSED", SCORE_CUTOFF - 0.01)]
    assert to_labels(below, min_confidence=0) == ()
    at = to_labels([raw("BUTTOCKS_EXPOSED", SCORE_CUTOFF)], min_confidence=0)
    assert at[-1].confidence == pytest.approx(SCORE_CUTOFF * 100)
    assert to_labels([raw("BUTTOCKS_EXPOSED", 0.7)], min_confidence=71) == ()


def test_mapped_labels_drive_the_policy_like_rekognition_labels() -> None:
    """The built-in policy flags an exposed-genitalia score of 0.95 and reviews a bikini at 0.7,
    naming the deepest label as the cause."""
    flagged = decide(DEFAULT_POLICY, _detection("MALE_GENITALIA_EXPOSED", 0.95), None)
    assert flagged.decision.value == "flag"
    assert [label.name for label in flagged.causes] == ["Exposed Male Genitalia"]
    reviewed = decide(DEFAULT_POLICY, _detection("FEMALE_BREAST_COVERED", 0.7), None)
    assert reviewed.decision.value == "review"
    assert [label.name for label in reviewed.causes] == ["Female Swimwear or Underwear"]


def _detection(cls: str, score: float):  # type: ignore[no-untyped-def]
    from bot.core.model import Detection

    return Detection(labels=to_labels([raw(cls, score)], min_confidence=40), model_version="t")
