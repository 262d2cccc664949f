"""How much a client of the bot's own HTTP port may hold: time, bytes and connections."""

from __future__ import annotations

from dataclasses import dataclass

# Between requests a kept-alive connection may idle this long (aiohttp's run_app default,
# above the 60 s idle timeout of common load balancers, which reuse connections to the bot).
IDLE_SECONDS = 75.0


@dataclass(frozen=True)
class HttpLimits:
    """Slack's requests are small and sent at once; anything slower or bigger is not Slack."""

    header_seconds: float = 10.0  # from a request's first byte to the end of its head
    body_seconds: float = 10.0  # from the end of the head to the end of the body
    max_body_bytes: int = 1_048_576
    max_connections: int = 256
    idle_seconds: float = IDLE_SECONDS

    def connections_within(self, open_files: int | None) -> int:
        """The connection cap, held to half the process's open-file limit: an accept that
        fails for want of a file descriptor would leave every new connection, Slack's
        included, waiting in the backlog, and the database and the outgoing connections to
        Slack and AWS need descriptors too."""
        if open_files is None:
            return self.max_connections
        return max(1, min(self.max_connections, open_files // 2))
