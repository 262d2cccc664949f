"""A small rooted error tree; each error carries the data a person needs to understand it."""

from __future__ import annotations


class ModbotError(Exception):
    """Root of every error modbot raises on purpose."""


class ScanFailed(ModbotError):
    """An image could not be scanned. `reason` says why (plain words, or a code that
    bot/core/messages/failures.py turns into words); `detail` is what the source said."""

    transient = False  # True: worth retrying later (network blips, throttling)

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class FetchBlocked(ScanFailed):
    """A URL was refused before or while connecting (SSRF guard, scheme, too many redirects)."""

    def __init__(self, url: str, address: str | None = None, why: str | None = None) -> None:
        reason = why or (f"blocked address {address}" if address else "blocked URL")
        super().__init__(reason, url)
        self.url = url
        self.address = address


class FetchFailed(ScanFailed):
    """A download did not produce bytes (HTTP error, timeout, over the byte cap, ...).

    `unreachable`: the server never answered in time or refused the connection; for a link
    posted in chat that is not worth waiting for again.
    """

    def __init__(
        self, url: str, reason: str, *, transient: bool = False, unreachable: bool = False
    ) -> None:
        super().__init__(reason, url)
        self.url = url
        self.transient = transient
        self.unreachable = unreachable


class SlackFileNotAccessible(FetchFailed):
    """Slack answered a file download with an HTML page: the app lacks `files:read` (or a token)."""

    def __init__(self, url: str) -> None:
        super().__init__(
            url,
            "Slack returned a web page instead of the file "
            "(is the app missing the files:read scope?)",
        )


class ImageRejected(ScanFailed):
    """The bytes are not an image Rekognition can take, and cannot be made into one."""


class DetectionFailed(ScanFailed):
    """Rekognition refused or failed the call. `code` is the AWS error code (also the `reason`:
    messages.failure_reason puts it into words)."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(code, message)
        self.code = code
        self.transient = transient


class ReviewFailed(ModbotError):
    """A human review could not be started or finished (A2I quota, S3 bucket unreachable, ...)."""

    def __init__(self, reason: str, detail: str = "", *, transient: bool = False) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.transient = transient  # True: worth retrying later (throttling, 5xx, timeouts)


class ConfigError(ModbotError):
    """Settings or policy that stop the bot from starting; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class PolicyError(ConfigError):
    """An invalid policy file: names the file, the key and the reason."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__([f"{file}: {key}: {reason}"])
        self.file = file
        self.key = key
        self.reason = reason
