"""Plain words for why an image could not be scanned, shown after "Could not scan …:".

The errors carry codes and data (bot/core/errors.py); this is where they become words.
"""

from __future__ import annotations

from bot.core.errors import DetectionFailed, ScanFailed

# Rekognition's error codes, as a person reading the alerts channel should see them.
DETECTION_REASONS = {
    "InvalidImageFormatException": "Rekognition could not read the image format",
    "ImageTooLargeException": "image too large for Rekognition",
    "InvalidParameterException": "Rekognition refused the image (too small or malformed)",
    "AccessDeniedException": "modbot is not allowed to call Rekognition (access denied)",
    "ThrottlingException": "Rekognition is throttling requests",
    "ProvisionedThroughputExceededException": "Rekognition request quota exceeded",
    "InternalServerError": "Rekognition had an internal error",
    "NudeNetError": "the local NudeNet model could not process the image",
}


def failure_reason(error: ScanFailed) -> str:
    """Why the scan failed, in plain words (what a person is shown, and what the audit keeps)."""
    if isinstance(error, DetectionFailed):
        return DETECTION_REASONS.get(error.code, f"Rekognition error {error.code}")
    return error.reason


def failure_text(error: ScanFailed) -> str:
    """The reason and its detail on one line ("<reason>: <detail>")."""
    reason = failure_reason(error)
    return f"{reason}: {error.detail}" if error.detail else reason
