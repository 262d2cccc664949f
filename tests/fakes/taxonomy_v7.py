"""The Rekognition moderation taxonomy v7 (model "7.0") as the emulator speaks it (aws.md §2.2).

Spellings follow aws.md's recommendation for the emulator: the [S10] forms ("Drugs & Tobacco
Paraphernalia & Use", "Kissing on the Lips", "Obstructed Intimate Parts"), Gambling as an L1 leaf.
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_VERSION = "7.0"

# L1 -> {L2 -> [L3, ...]}; kept as one literal so it can be checked against the table by eye.
_TREE: dict[str, dict[str, list[str]]] = {
    "Explicit": {
        "Explicit Nudity": [
            "Exposed Male Genitalia",
            "Exposed Female Genitalia",
            "Exposed Buttocks or Anus",
            "Exposed Female Nipple",
        ],
        "Explicit Sexual Activity": [],
        "Sex Toys": [],
    },
    "Non-Explicit Nudity of Intimate parts and Kissing": {
        "Non-Explicit Nudity": [
            "Bare Back",
            "Exposed Male Nipple",
            "Partially Exposed Buttocks",
            "Partially Exposed Female Breast",
            "Implied Nudity",
        ],
        "Obstructed Intimate Parts": ["Obstructed Female Nipple", "Obstructed Male Genitalia"],
        "Kissing on the Lips": [],
    },
    "Swimwear or Underwear": {
        "Female Swimwear or Underwear": [],
        "Male Swimwear or Underwear": [],
    },
    "Violence": {
        "Weapons": [],
        "Graphic Violence": [
            "Weapon Violence",
            "Physical Violence",
            "Self-Harm",
            "Blood & Gore",
            "Explosions and Blasts",
        ],
    },
    "Visually Disturbing": {
        "Death and Emaciation": ["Emaciated Bodies", "Corpses"],
        "Crashes": ["Air Crash"],
    },
    "Drugs & Tobacco": {
        "Products": ["Pills"],
        "Drugs & Tobacco Paraphernalia & Use": ["Smoking"],
    },
    "Alcohol": {
        "Alcohol Use": ["Drinking"],
        "Alcoholic Beverages": [],
    },
    "Rude Gestures": {"Middle Finger": []},
    "Gambling": {},
    "Hate Symbols": {
        "Nazi Party": [],
        "White Supremacy": [],
        "Extremist": [],
    },
}


@dataclass(frozen=True)
class TaxonomyNode:
    """One label of the tree: its parent ("" for L1) and its level (1..3)."""

    name: str
    parent: str
    level: int


def _flatten() -> dict[str, TaxonomyNode]:
    nodes: dict[str, TaxonomyNode] = {}
    for l1, children in _TREE.items():
        nodes[l1] = TaxonomyNode(l1, "", 1)
        for l2, leaves in children.items():
            nodes[l2] = TaxonomyNode(l2, l1, 2)
            for l3 in leaves:
                nodes[l3] = TaxonomyNode(l3, l2, 3)
    return nodes


NODES: dict[str, TaxonomyNode] = _flatten()


def ancestors(name: str) -> list[TaxonomyNode]:
    """The label itself followed by its parent, grandparent, ... (KeyError if unknown)."""
    chain = [NODES[name]]
    while chain[-1].parent:
        chain.append(NODES[chain[-1].parent])
    return chain
