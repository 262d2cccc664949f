"""NudeNet's body-part classes mapped onto Rekognition's v7 moderation taxonomy (pure).

NudeNet (the local detector, MODBOT_DETECTOR=nudenet) finds body parts with boxes and scores in
0..1. Policies, alerts and reviews speak v7 labels, so each class that has a v7 meaning becomes
that label with its whole path (L1, L2, L3), each parent taking the highest confidence of its
children, as Rekognition returns ancestors. Classes with no v7 meaning (faces, feet, armpits,
bellies, covered buttocks) are dropped: they say nothing a moderation policy can act on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from bot.core import taxonomy
from bot.core.model import Label

# NudeNet class -> the deepest v7 label it stands for. Read with the README's table.
TABLE: Mapping[str, str] = MappingProxyType(
    {
        "FEMALE_GENITALIA_EXPOSED": "Exposed Female Genitalia",
        "MALE_GENITALIA_EXPOSED": "Exposed Male Genitalia",
        "BUTTOCKS_EXPOSED": "Exposed Buttocks or Anus",
        "ANUS_EXPOSED": "Exposed Buttocks or Anus",
        # NudeNet has no nipple class: an exposed female breast is the closest it sees.
        "FEMALE_BREAST_EXPOSED": "Exposed Female Nipple",
        "MALE_BREAST_EXPOSED": "Exposed Male Nipple",
        # The model's "covered" examples are bikinis and lingerie, not everyday clothes.
        "FEMALE_BREAST_COVERED": "Female Swimwear or Underwear",
        "FEMALE_GENITALIA_COVERED": "Female Swimwear or Underwear",
    }
)

# Classes the model reports that have no v7 label (a person in trousers has covered buttocks).
DROPPED: frozenset[str] = frozenset(
    {
        "FACE_FEMALE",
        "FACE_MALE",
        "FEET_EXPOSED",
        "FEET_COVERED",
        "ARMPITS_EXPOSED",
        "ARMPITS_COVERED",
        "BELLY_EXPOSED",
        "BELLY_COVERED",
        "BUTTOCKS_COVERED",
        "ANUS_COVERED",
    }
)

# The lowest NudeNet score kept, chosen on generated images with no person in them (README,
# "Calibration"; bench/nudenet_calibration.py): two touching skin-coloured ellipses on a dark
# background scored up to 0.54 as BUTTOCKS_EXPOSED; 0.6 keeps a margin above that.
SCORE_CUTOFF = 0.6


def to_labels(
    detections: Iterable[Mapping[str, Any]],
    *,
    min_confidence: float,
    cutoff: float = SCORE_CUTOFF,
) -> tuple[Label, ...]:
    """NudeNet's output (`[{"class": ..., "score": 0..1, "box": [...]}, ...]`) as v7 labels.

    A score becomes a confidence in percent. Scores under `cutoff`, or under the call's
    `min_confidence` (percent, as for Rekognition), are dropped; so are classes in DROPPED and
    classes this table does not know (a newer model's). Each label comes once, with the highest
    confidence found for it or any label below it.
    """
    best: dict[str, float] = {}
    for found in detections:
        deepest = TABLE.get(str(found.get("class")))
        score = float(found.get("score") or 0.0)
        confidence = round(min(max(score, 0.0), 1.0) * 100.0, 3)
        if deepest is None or score < cutoff or confidence < min_confidence:
            continue
        for name in (deepest, *taxonomy.ancestors(deepest)):
            best[name] = max(best.get(name, 0.0), confidence)
    labels = [
        Label(
            name=name,
            parent=(taxonomy.ancestors(name) or ("",))[0],
            level=taxonomy.level(name) or 1,
            confidence=confidence,
        )
        for name, confidence in best.items()
    ]
    return tuple(sorted(labels, key=lambda label: (label.level, -label.confidence, label.name)))
