"""Reads Slack payloads and says which images they carry (pure: dicts in, ScanRequests out)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from bot.model import ImageRef, Origin, ScanRequest, Trigger

# More than this per message is a flood, not a conversation; the rest is not fetched.
MAX_LINKS_PER_MESSAGE = 10
MAX_FILES_PER_MESSAGE = 20
MAX_URL_LENGTH = 2048

IMAGE_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "jpe", "png", "gif", "webp", "bmp", "tif", "tiff", "heic", "heif", "avif"}
)
# Message subtypes that carry a new post; edits, deletions and joins do not.
SCANNED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "bot_message", "me_message"})

_LINK = re.compile(r"<(https?://[^>|\s]+)(?:\|[^>]*)?>", re.IGNORECASE)
_BARE_URL = re.compile(r"https?://\S+", re.IGNORECASE)


def claims_image(mimetype: str | None, name: str | None, filetype: str | None = None) -> bool:
    """Whether a file says it is an image (the content decides what it really is)."""
    if mimetype and mimetype.lower().startswith("image/"):
        return True
    if filetype and filetype.lower() in IMAGE_EXTENSIONS:
        return True
    return name is not None and extension(name) in IMAGE_EXTENSIONS


def extension(name_or_url: str) -> str:
    path = urlsplit(name_or_url).path if "://" in name_or_url else name_or_url
    _, dot, ext = path.rpartition(".")
    return ext.lower() if dot else ""


def links_in_text(text: str) -> list[str]:
    """URLs in Slack's `<url>` / `<url|label>` markup, unescaped, in order, without repeats."""
    return _unique(html.unescape(match) for match in _LINK.findall(text or ""))


def links_in_blocks(blocks: Any) -> list[str]:
    """URLs of `link` elements anywhere inside rich_text blocks."""
    return _unique(_walk_links(blocks))


def _walk_links(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        if node.get("type") == "link" and isinstance(node.get("url"), str):
            yield node["url"]
        for value in node.values():
            if isinstance(value, list | dict):
                yield from _walk_links(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_links(item)


def _unique(urls: Iterator[str] | Any) -> list[str]:
    seen: dict[str, None] = {}
    for url in urls:
        if len(url) <= MAX_URL_LENGTH and url.lower().startswith(("http://", "https://")):
            seen.setdefault(url, None)
    return list(seen)


def message_images(
    message: Mapping[str, Any], origin: Origin, key_prefix: str
) -> list[ScanRequest]:
    """Files that claim to be images, then links, from one message."""
    requests: list[ScanRequest] = []
    channel = origin.channel or ""
    for file in (message.get("files") or [])[:MAX_FILES_PER_MESSAGE]:
        if not isinstance(file, Mapping) or not file.get("id"):
            continue
        if file.get("mode") == "tombstone" or not claims_image(
            file.get("mimetype"), file.get("name"), file.get("filetype")
        ):
            continue
        image = ImageRef(
            url=file.get("url_private_download") or file.get("url_private"),
            file_id=str(file["id"]),
            name=file.get("name"),
            mimetype=file.get("mimetype"),
        )
        requests.append(ScanRequest(image, origin, f"{key_prefix}file:{channel}:{file['id']}"))
    links = links_in_text(str(message.get("text") or ""))
    links += [url for url in links_in_blocks(message.get("blocks")) if url not in links]
    ts = origin.message_ts or ""
    for url in links[:MAX_LINKS_PER_MESSAGE]:
        requests.append(
            ScanRequest(ImageRef(url=url), origin, f"{key_prefix}link:{channel}:{ts}:{url}")
        )
    return requests


def from_message_event(event: Mapping[str, Any], team: str | None) -> list[ScanRequest]:
    """A `message` event: uploads (subtype file_share) and image links in the text."""
    if event.get("subtype") not in SCANNED_SUBTYPES or not event.get("channel"):
        return []
    origin = Origin(
        trigger=Trigger.UPLOAD if event.get("files") else Trigger.LINK,
        channel=event["channel"],
        user=event.get("user") or event.get("bot_id"),
        message_ts=event.get("ts"),
        thread_ts=event.get("thread_ts"),
        team=team,
    )
    return message_images(event, origin, "")


def from_file_shared_event(event: Mapping[str, Any], team: str | None) -> list[ScanRequest]:
    """A `file_shared` event carries only the file id; files.info fills in the rest later.

    The dedup key matches the one from the `message` event, so one upload is scanned once.
    """
    file_id = event.get("file_id") or (event.get("file") or {}).get("id")
    channel = event.get("channel_id")
    if not file_id or not channel:
        return []
    origin = Origin(trigger=Trigger.UPLOAD, channel=channel, user=event.get("user_id"), team=team)
    return [ScanRequest(ImageRef(file_id=str(file_id)), origin, f"file:{channel}:{file_id}")]


class CommandKind(StrEnum):
    SCAN = "scan"
    HELP = "help"
    POLICY = "policy"
    INVALID = "invalid"


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    request: ScanRequest | None = None
    problem: str = ""


def parse_command(command: Mapping[str, Any]) -> Command:
    """`/moderate <url>`, `/moderate help`, `/moderate policy`."""
    text = str(command.get("text") or "").strip()
    word = text.lower()
    if word in ("", "help", "-h", "--help", "?"):
        return Command(CommandKind.HELP)
    if word == "policy":
        return Command(CommandKind.POLICY)
    urls = links_in_text(text) or _unique(html.unescape(u) for u in _BARE_URL.findall(text))
    if not urls:
        return Command(CommandKind.INVALID, problem=f"not a link I can scan: {text[:200]}")
    origin = Origin(
        trigger=Trigger.COMMAND,
        channel=command.get("channel_id"),
        user=command.get("user_id"),
        team=command.get("team_id"),
        response_url=command.get("response_url"),
    )
    key = f"command:{command.get('trigger_id') or uuid.uuid4().hex}"
    return Command(CommandKind.SCAN, ScanRequest(ImageRef(url=urls[0]), origin, key))


def from_message_shortcut(shortcut: Mapping[str, Any]) -> list[ScanRequest]:
    """The "Moderate images" shortcut: every image of the chosen message, on demand."""
    message = shortcut.get("message") or {}
    channel = (shortcut.get("channel") or {}).get("id")
    origin = Origin(
        trigger=Trigger.SHORTCUT,
        channel=channel,
        user=message.get("user"),
        message_ts=message.get("ts") or shortcut.get("message_ts"),
        thread_ts=message.get("thread_ts"),
        team=(shortcut.get("team") or {}).get("id"),
        response_url=shortcut.get("response_url"),
    )
    prefix = f"shortcut:{shortcut.get('trigger_id') or uuid.uuid4().hex}:"
    return message_images(message, origin, prefix)
