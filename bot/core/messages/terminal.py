"""What `modbot scan` prints: per image the decision and §5's breakdown lines, the summary
table, the backtest's differences, and one JSON object per image for `--json`. Plain text (no
mrkdwn), built from the same pieces as the Slack alert: path, percent, bar."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from bot.core import taxonomy
from bot.core.errors import ScanFailed
from bot.core.messages.common import PATH_SEPARATOR, TITLES, bar, percent
from bot.core.messages.failures import failure_reason
from bot.core.model import ChannelMode, Decision, Detection, Label, Outcome

DECISIONS = (Decision.FLAG, Decision.REVIEW, Decision.ALLOW)


def breakdown_lines(labels: Sequence[Label]) -> list[str]:
    """One line per branch (deepest returned label), as in the alert: `L1 › L2 — 97.3% ▰▰▱`."""
    lines = []
    for label in taxonomy.deepest(labels):
        route = PATH_SEPARATOR.join(taxonomy.path(label, labels))
        lines.append(f"{route} — {percent(label.confidence)} {bar(label.confidence)}")
    return lines


def _causes(causes: Iterable[Label]) -> str:
    return ", ".join(f"{label.name} ({percent(label.confidence)})" for label in causes)


def image_text(
    source: str,
    detection: Detection,
    outcome: Outcome,
    *,
    reused: bool,
    compared: Outcome | None = None,
) -> list[str]:
    """The lines printed for one scanned image."""
    title = TITLES[outcome.decision][1]
    notes = []
    if outcome.mode is not ChannelMode.ENFORCE:
        notes.append(f"channel in {outcome.mode.value} mode")
    if reused:
        notes.append("stored result, no detector call")
    suffix = f"  ({'; '.join(notes)})" if notes else ""
    lines = [f"{title}: {source}{suffix}"]
    breakdown = breakdown_lines(detection.labels)
    lines += [f"  {line}" for line in breakdown] or ["  No moderation labels found."]
    if outcome.causes:
        lines.append(f"  Caused by: {_causes(outcome.causes)}")
    if compared is not None and compared.decision != outcome.decision:
        lines.append(f"  Under the compared policy: {TITLES[compared.decision][1]}")
    lines.append(f"  Model {detection.model_version}")
    return lines


def failure_text(source: str, error: ScanFailed) -> str:
    """The line naming an image that could not be scanned, as the bot words it."""
    return f"Could not scan {source}: {failure_reason(error)}"


def summary_lines(decisions: Counter[Decision], labels: Counter[str], failed: int) -> list[str]:
    """The table at the end: images per decision, then images per label (most first)."""
    rows: list[tuple[str, int]] = [(TITLES[d][1], decisions[d]) for d in DECISIONS]
    rows.append(("Could not scan", failed))
    label_rows = sorted(labels.items(), key=lambda item: (-item[1], item[0]))
    width = max(len(name) for name, _ in [*rows, *label_rows, ("Label", 0)])
    lines = ["", f"{'Decision':<{width}}  Images"]
    lines += [f"{name:<{width}}  {count:>6}" for name, count in rows]
    if label_rows:
        lines += ["", f"{'Label':<{width}}  Images"]
        lines += [f"{name:<{width}}  {count:>6}" for name, count in label_rows]
    return lines


def comparison_lines(
    compared_with: str, differences: Sequence[tuple[str, Outcome, Outcome]]
) -> list[str]:
    """The backtest: every image whose decision differs under the compared policy."""
    if not differences:
        return ["", f"No image's decision differs under {compared_with}."]
    count = len(differences)
    images = "image" if count == 1 else "images"
    lines = ["", f"{count} {images} decided differently under {compared_with}:"]
    for source, now, then in differences:
        lines.append(f"  {source}: {now.decision.value} -> {then.decision.value}")
    return lines


def image_json(
    source: str,
    detection: Detection,
    outcome: Outcome,
    *,
    sha256: str,
    detector: str,
    reused: bool,
    compared: Outcome | None = None,
) -> dict[str, Any]:
    """One `--json` object for a scanned image."""
    found: dict[str, Any] = {
        "source": source,
        "status": "scanned",
        "decision": outcome.decision.value,
        "mode": outcome.mode.value,
        "causes": [label.name for label in outcome.causes],
        "labels": [
            {
                "name": label.name,
                "parent": label.parent,
                "level": label.level,
                "confidence": label.confidence,
            }
            for label in detection.labels
        ],
        "breakdown": breakdown_lines(detection.labels),
        "detector": detector,
        "model_version": detection.model_version,
        "sha256": sha256,
        "cached": reused,
    }
    if compared is not None:
        found["compared"] = {
            "decision": compared.decision.value,
            "causes": [label.name for label in compared.causes],
            "differs": compared.decision != outcome.decision,
        }
    return found


def failure_json(source: str, error: ScanFailed) -> dict[str, Any]:
    """One `--json` object for an image that could not be scanned."""
    return {"source": source, "status": "failed", "reason": failure_reason(error)}
