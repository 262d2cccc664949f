"""Logging set-up that never lets a Slack token or the signing secret reach the logs, as text
lines or as one JSON object per line (MODBOT_LOG_FORMAT=json)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime

_TOKEN = re.compile(r"\bx(?:ox[abpe]|app)-[A-Za-z0-9-]+")

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Mask:
    """Replaces Slack tokens (by shape) and the configured secrets (by value) with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = [secret for secret in secrets if len(secret) >= 6]

    def __call__(self, text: str) -> str:
        cleaned = _TOKEN.sub("***", text)
        for secret in self._secrets:
            cleaned = cleaned.replace(secret, "***")
        return cleaned


class Redact(logging.Filter):
    """Masks the message itself, so records handed on to other handlers are clean too."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._mask = _Mask(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._mask(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class RedactingFormatter(logging.Formatter):
    """Masks the whole formatted output: tracebacks (`exc_info`, `exc_text`) and `stack_info`
    are rendered here, after any filter has run, and can carry a token in an exception's
    message or repr (a SlackApiError, a URL)."""

    def __init__(self, fmt: str = FORMAT, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self._mask = _Mask(secrets)

    def format(self, record: logging.LogRecord) -> str:
        text = self._mask(super().format(record))
        if record.exc_text:  # cached on the record for later handlers: cache the masked text
            record.exc_text = self._mask(record.exc_text)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the
    traceback (`exc_info`) and `stack_info` when there are any. Every value is masked before it
    is encoded, so escaping cannot hide a secret from the mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._mask = _Mask(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self._mask(record.getMessage()),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)  # cached masked, as the text format does
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self._mask(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)


def configure(
    level: int = logging.INFO, secrets: Iterable[str] = (), log_format: str = "text"
) -> None:
    """Root logging to stderr, masked, as text lines or (`json`) one JSON object per line."""
    secrets = list(secrets)
    handler = logging.StreamHandler()
    formatter: logging.Formatter = (
        JsonFormatter(secrets) if log_format == "json" else RedactingFormatter(FORMAT, secrets)
    )
    handler.setFormatter(formatter)
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
