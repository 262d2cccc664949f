"""Rekognition's moderation label tree (taxonomy v7) and how to read a response against it.

Pure data and functions. Names are compared through `key()`: case-insensitively, with runs of
whitespace collapsed, and with "Drug & …" read as "Drugs & …", because AWS's own sources spell a
few v7 names inconsistently (aws.md §2.4).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from bot.core.model import Label

# L1 -> {L2 -> (L3, ...)}, spelled as in aws.md §2.2 (the [S10] forms); one literal so it can be
# checked against the table by eye. Gambling is an L1 with no children.
TREE: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "Explicit": {
            "Explicit Nudity": (
                "Exposed Male Genitalia",
                "Exposed Female Genitalia",
                "Exposed Buttocks or Anus",
                "Exposed Female Nipple",
            ),
            "Explicit Sexual Activity": (),
            "Sex Toys": (),
        },
        "Non-Explicit Nudity of Intimate parts and Kissing": {
            "Non-Explicit Nudity": (
                "Bare Back",
                "Exposed Male Nipple",
                "Partially Exposed Buttocks",
                "Partially Exposed Female Breast",
                "Implied Nudity",
            ),
            "Obstructed Intimate Parts": ("Obstructed Female Nipple", "Obstructed Male Genitalia"),
            "Kissing on the Lips": (),
        },
        "Swimwear or Underwear": {
            "Female Swimwear or Underwear": (),
            "Male Swimwear or Underwear": (),
        },
        "Violence": {
            "Weapons": (),
            "Graphic Violence": (
                "Weapon Violence",
                "Physical Violence",
                "Self-Harm",
                "Blood & Gore",
                "Explosions and Blasts",
            ),
        },
        "Visually Disturbing": {
            "Death and Emaciation": ("Emaciated Bodies", "Corpses"),
            "Crashes": ("Air Crash",),
        },
        "Drugs & Tobacco": {
            "Products": ("Pills",),
            "Drugs & Tobacco Paraphernalia & Use": ("Smoking",),
        },
        "Alcohol": {
            "Alcohol Use": ("Drinking",),
            "Alcoholic Beverages": (),
        },
        "Rude Gestures": {"Middle Finger": ()},
        "Gambling": {},
        "Hate Symbols": {"Nazi Party": (), "White Supremacy": (), "Extremist": ()},
    }
)

# Other spellings seen in AWS sources (aws.md §2.4). A2I compares names exactly, so conditions
# are written once per spelling.
_OTHER_SPELLINGS: Mapping[str, tuple[str, ...]] = {
    "Drugs & Tobacco Paraphernalia & Use": ("Drug & Tobacco Paraphernalia & Use",),
    "Kissing on the Lips": ("Kissing on the lips",),
    "Obstructed Intimate Parts": ("Obstructed intimate parts",),
}


def key(name: str) -> str:
    """The comparison key of a label name: case- and spacing-insensitive, Drug/Drugs as one."""
    folded = " ".join(name.split()).casefold()
    if folded.startswith("drug & "):
        folded = "drugs & " + folded[len("drug & ") :]
    return folded


def _index() -> tuple[dict[str, str], dict[str, str], dict[str, int], dict[str, list[str]]]:
    names: dict[str, str] = {}
    parents: dict[str, str] = {}
    levels: dict[str, int] = {}
    children: dict[str, list[str]] = {}

    def add(name: str, parent: str, level: int) -> None:
        names[key(name)] = name
        parents[key(name)] = parent
        levels[key(name)] = level
        children[key(name)] = []
        if parent:
            children[key(parent)].append(name)

    for l1, l2s in TREE.items():
        add(l1, "", 1)
        for l2, l3s in l2s.items():
            add(l2, l1, 2)
            for l3 in l3s:
                add(l3, l2, 3)
    return names, parents, levels, children


_NAMES, _PARENTS, _LEVELS, _CHILDREN = _index()

#: Every v7 label, parents before children, in the order of the table.
ALL_LABELS: tuple[str, ...] = tuple(_NAMES.values())


def canonical(name: str) -> str:
    """The v7 spelling of a label name; an unknown name comes back trimmed but otherwise as is."""
    return _NAMES.get(key(name), " ".join(name.split()))


def is_known(name: str) -> bool:
    """Whether the name (in any case, either Drug/Drugs spelling) is a v7 label."""
    return key(name) in _NAMES


def level(name: str) -> int | None:
    """The taxonomy level (1..3) of a known label, None for an unknown one."""
    return _LEVELS.get(key(name))


def ancestors(name: str) -> tuple[str, ...]:
    """The static tree's ancestors of a label, nearest first (L3 -> (L2, L1)); () if unknown."""
    found: list[str] = []
    parent = _PARENTS.get(key(name), "")
    while parent:
        found.append(parent)
        parent = _PARENTS[key(parent)]
    return tuple(found)


def children(name: str) -> tuple[str, ...]:
    """The static tree's direct children of a label."""
    return tuple(_CHILDREN.get(key(name), ()))


def descendants(name: str) -> tuple[str, ...]:
    """Every label below this one in the static tree, parents before children."""
    found: list[str] = []
    for child in children(name):
        found.append(child)
        found.extend(descendants(child))
    return tuple(found)


def spellings(name: str) -> tuple[str, ...]:
    """Every spelling AWS sources use for a label, the v7 one first."""
    name = canonical(name)
    return (name, *_OTHER_SPELLINGS.get(name, ()))


def suggest(name: str) -> str | None:
    """The known label a misspelt name most likely meant, for did-you-mean messages."""
    close = difflib.get_close_matches(key(name), list(_NAMES), n=1, cutoff=0.6)
    return _NAMES[close[0]] if close else None


def _unique(labels: Iterable[Label]) -> dict[str, Label]:
    """One label per name; if a name repeats keep the deeper, then the more confident one."""
    by_key: dict[str, Label] = {}
    for label in labels:
        k = key(label.name)
        kept = by_key.get(k)
        if kept is None or (label.level, label.confidence) > (kept.level, kept.confidence):
            by_key[k] = label
    return by_key


def deepest(labels: Iterable[Label]) -> tuple[Label, ...]:
    """The returned labels none of whose returned children exist, most confident first.

    Children are found through the labels' own ParentName links (compared by `key`), so this
    works for v6 two-level responses too. A label naming itself as parent (v6 "Gambling" under
    "Gambling") is not its own child.
    """
    by_key = _unique(labels)
    parents = {
        key(label.parent) for k, label in by_key.items() if label.parent and key(label.parent) != k
    }
    leaves = [label for k, label in by_key.items() if k not in parents]
    return tuple(sorted(leaves, key=lambda label: (-label.confidence, key(label.name))))


def path(label: Label, labels: Iterable[Label]) -> tuple[str, ...]:
    """The names from L1 down to `label`, e.g. ("Explicit", "Explicit Nudity", "Sex Toys").

    Walks ParentName through the returned labels (keeping their spelling), and falls back to the
    static tree where a parent was not returned or a non-top label came without a ParentName.
    """
    by_key = _unique(labels)
    names = [label.name]
    seen = {key(label.name)}
    current = label
    parent = _parent_of(current)
    while parent and key(parent) not in seen:
        seen.add(key(parent))
        returned = by_key.get(key(parent))
        if returned is not None:
            names.append(returned.name)
            current = returned
            parent = _parent_of(current)
        else:
            names.append(canonical(parent))
            parent = _PARENTS.get(key(parent), "")
    return tuple(reversed(names))


def _parent_of(label: Label) -> str:
    # A label that says it is below level 1 but lost its ParentName still has a place in the tree.
    if label.parent or label.level < 2:
        return label.parent
    return _PARENTS.get(key(label.name), "")


def top_label(labels: Iterable[Label]) -> Label | None:
    """The deepest label with the highest confidence (ties: by name), None for a clean image."""
    found = deepest(labels)
    return found[0] if found else None
