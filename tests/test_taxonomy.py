"""The v7 label tree and reading Rekognition responses against it."""

from __future__ import annotations

import pytest

from bot.core import taxonomy
from bot.core.model import Label


def lbl(name: str, parent: str = "", level: int = 1, confidence: float = 90.0) -> Label:
    return Label(name=name, parent=parent, level=level, confidence=confidence)


# The AWS v7 sample (aws.md §1.4a), which spells the L2 "Drug & …".
SMOKING = (
    lbl("Smoking", "Drug & Tobacco Paraphernalia & Use", 3, 99.4),
    lbl("Drug & Tobacco Paraphernalia & Use", "Drugs & Tobacco", 2, 99.4),
    lbl("Drugs & Tobacco", "", 1, 99.4),
)


def test_tree_has_the_documented_counts() -> None:
    """The tree holds 10 L1, 20 L2 and 22 L3 labels, as aws.md §2.2 totals."""
    levels = [taxonomy.level(name) for name in taxonomy.ALL_LABELS]
    assert (levels.count(1), levels.count(2), levels.count(3)) == (10, 20, 22)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("explicit", "Explicit"),
        ("  EXPOSED   male nipple ", "Exposed Male Nipple"),
        ("Drug & Tobacco Paraphernalia & Use", "Drugs & Tobacco Paraphernalia & Use"),
        ("kissing on the lips", "Kissing on the Lips"),
        (
            "Non-Explicit Nudity of Intimate Parts and Kissing",
            "Non-Explicit Nudity of Intimate parts and Kissing",
        ),
        ("Suggestive", "Suggestive"),
    ],
)
def test_canonical_spelling(given: str, expected: str) -> None:
    """Names are matched case-insensitively with Drug/Drugs as one; unknown names pass through."""
    assert taxonomy.canonical(given) == expected


def test_is_known() -> None:
    """Known means a v7 label in any case or Drug/Drugs spelling; v6-only names are not."""
    assert taxonomy.is_known("drug & tobacco paraphernalia & use")
    assert taxonomy.is_known("GAMBLING")
    assert not taxonomy.is_known("Suggestive")
    assert not taxonomy.is_known("Explcit")


def test_ancestors_nearest_first() -> None:
    """ancestors() walks the static tree upward, nearest first, and is empty for L1 or unknown."""
    assert taxonomy.ancestors("exposed male nipple") == (
        "Non-Explicit Nudity",
        "Non-Explicit Nudity of Intimate parts and Kissing",
    )
    assert taxonomy.ancestors("Explicit") == ()
    assert taxonomy.ancestors("Suggestive") == ()


def test_descendants_and_spellings() -> None:
    """descendants() lists the whole subtree; spellings() lists every AWS spelling, v7 first."""
    assert taxonomy.descendants("Drugs & Tobacco") == (
        "Products",
        "Pills",
        "Drugs & Tobacco Paraphernalia & Use",
        "Smoking",
    )
    assert taxonomy.spellings("drug & tobacco paraphernalia & use") == (
        "Drugs & Tobacco Paraphernalia & Use",
        "Drug & Tobacco Paraphernalia & Use",
    )


def test_suggest_finds_typos() -> None:
    """A misspelt label gets a did-you-mean suggestion; nonsense gets none."""
    assert taxonomy.suggest("Explcit") == "Explicit"
    assert taxonomy.suggest("Exposed Male Nipples") == "Exposed Male Nipple"
    assert taxonomy.suggest("zzzz") is None


def test_deepest_of_a_full_branch_is_the_l3() -> None:
    """Of an L3 returned with its ancestors, only the L3 is deepest, across Drug/Drugs spellings."""
    assert taxonomy.deepest(SMOKING) == (SMOKING[0],)


def test_deepest_of_a_parent_with_two_children() -> None:
    """A parent returned with two children yields both children, most confident first."""
    labels = [
        lbl("Explicit", "", 1, 80.0),
        lbl("Explicit Nudity", "Explicit", 2, 80.0),
        lbl("Exposed Female Nipple", "Explicit Nudity", 3, 60.0),
        lbl("Exposed Male Genitalia", "Explicit Nudity", 3, 80.0),
    ]
    assert [x.name for x in taxonomy.deepest(labels)] == [
        "Exposed Male Genitalia",
        "Exposed Female Nipple",
    ]


def test_deepest_of_v6_two_level_response() -> None:
    """v6 responses (two levels, level derived from ParentName) work through ParentName links."""
    labels = [
        lbl("Explicit Nudity", "", 1, 79.0),
        lbl("Graphic Male Nudity", "Explicit Nudity", 2, 79.0),
        lbl("Sexual Activity", "Explicit Nudity", 2, 69.0),
        lbl("Suggestive", "", 1, 55.0),
    ]
    assert [x.name for x in taxonomy.deepest(labels)] == [
        "Graphic Male Nudity",
        "Sexual Activity",
        "Suggestive",
    ]


def test_deepest_ignores_self_parent_and_duplicates() -> None:
    """A label naming itself as parent is not its own child; a repeated name counts once."""
    labels = [lbl("Gambling", "Gambling", 2, 70.0), lbl("Gambling", "", 1, 70.0)]
    assert [x.name for x in taxonomy.deepest(labels)] == ["Gambling"]
    assert taxonomy.path(taxonomy.deepest(labels)[0], labels) == ("Gambling",)


def test_path_walks_returned_labels_keeping_their_spelling() -> None:
    """path() follows ParentName through the returned labels and keeps AWS's spelling."""
    assert taxonomy.path(SMOKING[0], SMOKING) == (
        "Drugs & Tobacco",
        "Drug & Tobacco Paraphernalia & Use",
        "Smoking",
    )


def test_path_falls_back_to_static_tree() -> None:
    """Ancestors that were not returned, or a lost ParentName, come from the static tree."""
    alone = lbl("Smoking", "Drugs & Tobacco Paraphernalia & Use", 3)
    assert taxonomy.path(alone, [alone]) == (
        "Drugs & Tobacco",
        "Drugs & Tobacco Paraphernalia & Use",
        "Smoking",
    )
    orphan = lbl("Exposed Male Nipple", "", 3)
    assert taxonomy.path(orphan, [orphan])[0] == "Non-Explicit Nudity of Intimate parts and Kissing"
    unknown = lbl("Something New", "Also New", 2)
    assert taxonomy.path(unknown, [unknown]) == ("Also New", "Something New")


def test_top_label() -> None:
    """top_label is the deepest label with the highest confidence, None for a clean image."""
    labels = [
        lbl("Violence", "", 1, 95.0),
        lbl("Weapons", "Violence", 2, 95.0),
        *SMOKING,
    ]
    top = taxonomy.top_label(labels)
    assert top is not None
    assert top.name == "Smoking"
    assert taxonomy.top_label([]) is None
