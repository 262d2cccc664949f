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

from bot.core.model import ImageRef, Origin, ScanRequest, Trigger

# More than this per message is a flood, not a conversation; the rest is not fetched.
MAX_LINKS_PER_MESSAGE = 10
MAX_FILES_PER_MESSAGE = 20
MAX_URL_LENGTH = 2048

IMAGE_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "jpe", "png", "gif", "webp", "bmp", "tif", "tiff", "heic", "heif", "avif"}
)
# Message subtypes that carry a new post; deletions and joins do not. Edits are read apart
# (EDITED): only what the edit added is new.
SCANNED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "bot_message", "me_message"})
EDITED = "message_changed"

# Slack escapes a literal < or > in text as &lt; / &gt;, so neither occurs inside markup;
# excluding "<" keeps the match linear on hostile text full of unclosed "<http://" openers.
_LINK = re.compile(r"<(https?://[^<>|\s]+)(?:\|[^<>]*)?>", re.IGNORECASE)
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


def images_in_blocks(blocks: Any) -> list[str]:
    """`image_url`s of Block Kit image blocks and image elements (how apps post pictures)."""
    return _unique(_walk_images(blocks))


def images_in_attachments(attachments: Any) -> list[str]:
    """`image_url`s of legacy attachments (bots, integrations, link unfurls), and of the image
    blocks inside them."""
    urls: list[str] = []
    for attachment in attachments if isinstance(attachments, list) else []:
        if isinstance(attachment, Mapping):
            url = _text(attachment.get("image_url"))
            urls += [url] if url else []
            urls += images_in_blocks(attachment.get("blocks"))
    return _unique(urls)


def _walk_images(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        if node.get("type") == "image" and isinstance(node.get("image_url"), str):
            yield node["image_url"]
        for value in node.values():
            if isinstance(value, list | dict):
                yield from _walk_images(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_images(item)


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


def _text(value: Any) -> str | None:
    """A payload field that must be a string: the string, or None for anything else."""
    return value if isinstance(value, str) and value else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _unique(urls: Iterator[str] | Any) -> list[str]:
    seen: dict[str, None] = {}
    for url in urls:
        if len(url) <= MAX_URL_LENGTH and url.lower().startswith(("http://", "https://")):
            seen.setdefault(url, None)
    return list(seen)


def message_links(message: Mapping[str, Any]) -> list[str]:
    """Every link a message shows, in order: text, rich_text links, image blocks, attachments."""
    links = links_in_text(_text(message.get("text")) or "")
    for more in (
        links_in_blocks(message.get("blocks")),
        images_in_blocks(message.get("blocks")),
        images_in_attachments(message.get("attachments")),
    ):
        links += [url for url in more if url not in links]
    return links


def _file_ids(message: Mapping[str, Any]) -> set[str]:
    files = message.get("files")
    return {
        file["id"]
        for file in (files if isinstance(files, list) else [])
        if isinstance(file, Mapping) and _text(file.get("id"))
    }


def message_images(
    message: Mapping[str, Any],
    origin: Origin,
    key_prefix: str,
    seen: Mapping[str, Any] | None = None,
) -> list[ScanRequest]:
    """Files that claim to be images, then links, from one message; none that `seen` (the
    message before an edit) already had. The per-message caps apply to the whole message."""
    requests: list[ScanRequest] = []
    channel = origin.channel or ""
    old_files = _file_ids(seen) if seen is not None else set()
    files = message.get("files")
    for file in (files if isinstance(files, list) else [])[:MAX_FILES_PER_MESSAGE]:
        file_id = _text(file.get("id")) if isinstance(file, Mapping) else None
        if file_id is None or file_id in old_files:
            continue
        mimetype, name = _text(file.get("mimetype")), _text(file.get("name"))
        if file.get("mode") == "tombstone" or not claims_image(
            mimetype, name, _text(file.get("filetype"))
        ):
            continue
        image = ImageRef(
            url=_text(file.get("url_private_download")) or _text(file.get("url_private")),
            file_id=file_id,
            name=name,
            mimetype=mimetype,
        )
        requests.append(ScanRequest(image, origin, f"{key_prefix}file:{channel}:{file_id}"))
    old_links = set(message_links(seen)) if seen is not None else set()
    ts = origin.message_ts or ""
    for url in message_links(message)[:MAX_LINKS_PER_MESSAGE]:
        if url in old_links:
            continue
        requests.append(
            ScanRequest(ImageRef(url=url), origin, f"{key_prefix}link:{channel}:{ts}:{url}")
        )
    return requests


def event_id(body: Mapping[str, Any]) -> str | None:
    """The Events API envelope's event id (redeliveries repeat it), if it is a sane string."""
    value = _text(body.get("event_id"))
    return value if value is not None and len(value) <= 64 else None


def from_message_event(event: Mapping[str, Any], team: str | None) -> list[ScanRequest]:
    """A `message` event: uploads (subtype file_share) and image links in the text; for an
    edit (`message_changed`), only the images the edit added."""
    channel = _text(event.get("channel"))
    if channel is None:
        return []
    if event.get("subtype") == EDITED:
        # The edited message keeps its own ts, so what it already had gets the same dedup keys
        # as when it was posted: even without `previous_message`, nothing is scanned twice.
        previous = event.get("previous_message")
        return _post_images(
            _mapping(event.get("message")),
            channel,
            team,
            seen=previous if isinstance(previous, Mapping) else None,
        )
    return _post_images(event, channel, team)


def _post_images(
    message: Mapping[str, Any],
    channel: str,
    team: str | None,
    seen: Mapping[str, Any] | None = None,
) -> list[ScanRequest]:
    subtype = message.get("subtype")
    if not (subtype is None or isinstance(subtype, str)) or subtype not in SCANNED_SUBTYPES:
        return []
    origin = Origin(
        trigger=Trigger.UPLOAD if message.get("files") else Trigger.LINK,
        channel=channel,
        user=_text(message.get("user")) or _text(message.get("bot_id")),
        message_ts=_text(message.get("ts")),
        thread_ts=_text(message.get("thread_ts")),
        team=team,
    )
    return message_images(message, origin, "", seen)


def from_file_shared_event(event: Mapping[str, Any], team: str | None) -> list[ScanRequest]:
    """A `file_shared` event carries only the file id; files.info fills in the rest later.

    The dedup key matches the one from the `message` event, so one upload is scanned once.
    """
    file_id = _text(event.get("file_id")) or _text(_mapping(event.get("file")).get("id"))
    channel = _text(event.get("channel_id"))
    if not file_id or not channel:
        return []
    user = _text(event.get("user_id"))
    origin = Origin(trigger=Trigger.UPLOAD, channel=channel, user=user, team=team)
    return [ScanRequest(ImageRef(file_id=file_id), origin, f"file:{channel}:{file_id}")]


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
    text = (_text(command.get("text")) or "").strip()
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
        channel=_text(command.get("channel_id")),
        user=_text(command.get("user_id")),
        team=_text(command.get("team_id")),
        response_url=_text(command.get("response_url")),
    )
    key = f"command:{_text(command.get('trigger_id')) or uuid.uuid4().hex}"
    return Command(CommandKind.SCAN, ScanRequest(ImageRef(url=urls[0]), origin, key))


def from_message_shortcut(shortcut: Mapping[str, Any]) -> list[ScanRequest]:
    """The "Moderate images" shortcut: every image of the chosen message, on demand."""
    message = _mapping(shortcut.get("message"))
    origin = Origin(
        trigger=Trigger.SHORTCUT,
        channel=_text(_mapping(shortcut.get("channel")).get("id")),
        user=_text(message.get("user")),
        message_ts=_text(message.get("ts")) or _text(shortcut.get("message_ts")),
        thread_ts=_text(message.get("thread_ts")),
        team=_text(_mapping(shortcut.get("team")).get("id")),
        response_url=_text(shortcut.get("response_url")),
    )
    prefix = f"shortcut:{_text(shortcut.get('trigger_id')) or uuid.uuid4().hex}:"
    return message_images(message, origin, prefix)
