"""PDQ perceptual hashes as values: the hex form HMA and the bank CSV use, distance, quality.

A PDQ hash is 256 bits written as 64 lowercase hex digits, most significant bit first (the form
python-threatexchange and HMA 2.0 produce). Two hashes match when few bits differ; a hash is
only trusted when its quality (0..100, how much detail the image had) is high enough.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BITS = 256
DEFAULT_MATCH_DISTANCE = 31  # HMA's and PDQ's own recommended threshold, of 256 bits
MIN_QUALITY = 50  # below this PDQ's authors advise not to match at all (flat, tiny images)

_HEX = re.compile(r"[0-9a-f]{64}")


def is_pdq_hex(value: str) -> bool:
    """64 lowercase hex digits (HMA refuses other spellings)."""
    return _HEX.fullmatch(value) is not None


def distance(a: str, b: str) -> int:
    """Bits that differ between two hashes in hex form."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


@dataclass(frozen=True)
class ImageHashes:
    """The PDQ hash of one image as posted (what is stored, exported and given to HMA), the
    hashes of its 8 rotations and mirror images (the first is the image itself), and its
    quality."""

    pdq: str
    quality: int
    dihedral: tuple[str, ...]
    # The same 8 hashes of the picture inside uniform borders (a screenshot's frame, a
    # letterbox), when it has any: PDQ alone sees a framed copy as another image.
    trimmed: tuple[str, ...] = ()

    @property
    def matchable(self) -> bool:
        return self.quality >= MIN_QUALITY

    @property
    def queries(self) -> tuple[str, ...]:
        """Every hash to look up: all orientations, framed and unframed."""
        return self.dihedral + self.trimmed


@dataclass(frozen=True)
class BankEntry:
    """One human verdict in the hash bank (PRODUCT §11), or one imported from another bank."""

    pdq: str
    quality: int
    violation: bool
    labels: tuple[str, ...]
    first_seen: float  # Unix time
    scan_id: str | None = None  # the scan whose verdict it is; None for imported rows


@dataclass(frozen=True)
class BankMatch:
    """The nearest bank entry to an image, within the match distance."""

    entry_id: int
    entry: BankEntry
    distance: int


@dataclass(frozen=True)
class PartnerMatch:
    """A match in a partner system's bank (HMA): which bank, and how far."""

    bank: str
    distance: int | None
