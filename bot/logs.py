"""Logging set-up that never lets a Slack token or the signing secret reach the logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

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


def configure(level: int = logging.INFO, secrets: Iterable[str] = ()) -> None:
    secrets = list(secrets)
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(FORMAT, secrets))
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
