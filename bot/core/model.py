"""The project's own vocabulary: frozen values the core computes with, free of any SDK type."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bot.core.pdq import PartnerMatch


class Decision(StrEnum):
    """What the policy says about an image."""

    ALLOW = "allow"
    REVIEW = "review"
    FLAG = "flag"


class ChannelMode(StrEnum):
    """How a channel is moderated: act on decisions, only record them, or not scan at all."""

    ENFORCE = "enforce"
    SHADOW = "shadow"
    OFF = "off"


@dataclass(frozen=True)
class Label:
    """One moderation label as Rekognition returned it (ancestors come back as labels too)."""

    name: str
    parent: str  # "" for a level-1 label
    level: int  # taxonomy level 1..3
    confidence: float  # 0..100


@dataclass(frozen=True)
class ContentType:
    """Rekognition's guess at the kind of picture (animated, illustrated)."""

    name: str
    confidence: float


@dataclass(frozen=True)
class Detection:
    """The result of one DetectModerationLabels call, translated at the edge."""

    labels: tuple[Label, ...]
    model_version: str
    content_types: tuple[ContentType, ...] = ()
    min_confidence: float = 0.0  # the MinConfidence the call was made with
    # An external review the detection call itself opened (A2I: the human loop's ARN).
    review_ref: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The policy's answer for one image in one channel, with the labels that caused it."""

    decision: Decision
    causes: tuple[Label, ...] = ()
    mode: ChannelMode = ChannelMode.ENFORCE
    confirm: bool = False  # flagged images also go to human review

    @property
    def needs_review(self) -> bool:
        """A human look is asked for: review decisions, and flags when confirmation is on."""
        if self.mode is not ChannelMode.ENFORCE:
            return False
        return self.decision is Decision.REVIEW or (self.decision is Decision.FLAG and self.confirm)

    @property
    def alerts(self) -> bool:
        """Whether the decision is posted to the alerts channel."""
        return self.mode is ChannelMode.ENFORCE and self.decision is not Decision.ALLOW


class Trigger(StrEnum):
    """How an image reached modbot."""

    UPLOAD = "upload"
    LINK = "link"
    COMMAND = "command"
    SHORTCUT = "shortcut"


@dataclass(frozen=True)
class ImageRef:
    """Where the bytes of one image are: a Slack-hosted file, or a link somebody posted."""

    url: str | None = None  # the link, or the file's url_private_download once known
    file_id: str | None = None  # Slack file id; url may be unknown until files.info
    name: str | None = None  # file name as posted (for messages)
    mimetype: str | None = None

    @property
    def label(self) -> str:
        """A short human name for the image: file name, else the URL, else the file id."""
        return self.name or self.url or self.file_id or "image"


@dataclass(frozen=True)
class Origin:
    """Where and by whom an image was posted, and whom to answer."""

    trigger: Trigger
    channel: str | None = None
    user: str | None = None
    message_ts: str | None = None
    thread_ts: str | None = None
    team: str | None = None
    response_url: str | None = None  # slash commands and shortcuts answer here


@dataclass(frozen=True)
class ScanRequest:
    """One image to scan, as extracted from a Slack payload: the unit of work."""

    image: ImageRef
    origin: Origin
    dedup_key: str  # same key => same piece of work (redelivery, two events for one file)


@dataclass(frozen=True)
class AlertRef:
    """A posted alert, so follow-ups can thread under it and update it."""

    channel: str
    ts: str
    permalink: str | None = None


@dataclass(frozen=True)
class PriorVerdict:
    """A human decision already made for the same image bytes."""

    violation: bool
    labels: tuple[str, ...] = ()
    alert: AlertRef | None = None
    # Set for a near-duplicate (PDQ bits that differ, PRODUCT §11); None for the same bytes.
    distance: int | None = None


@dataclass(frozen=True)
class History:
    """What modbot already knows about these bytes from earlier posts."""

    earlier_alert: AlertRef | None = None
    verdict: PriorVerdict | None = None
    open_review: AlertRef | None = None  # alert of a review still waiting for a verdict
    # A near-duplicate humans found fine: mentioned in an alert, never decides (PRODUCT §11).
    similar: PriorVerdict | None = None


@dataclass(frozen=True)
class ScanReport:
    """Everything the message builders need to describe one scanned image."""

    scan_id: str
    request: ScanRequest
    detection: Detection
    outcome: Outcome
    sha256: str
    reused: bool = False  # the detection came from an earlier scan of the same bytes
    history: History = field(default_factory=History)
    # A match in a partner's hash bank (HMA) that flagged the image without detection.
    partner: PartnerMatch | None = None
