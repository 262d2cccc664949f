"""Payload extraction: which images a Slack payload carries, and their dedup keys."""

from __future__ import annotations

import pytest

from bot.core import payloads as extract
from bot.core.model import Trigger
from bot.core.payloads import CommandKind


def _message(**fields: object) -> dict[str, object]:
    return {"type": "message", "channel": "C1", "user": "U1", "ts": "100.1", **fields}


def _file(file_id: str = "F1", name: str = "cat.png", mimetype: str = "image/png") -> dict:
    return {
        "id": file_id,
        "name": name,
        "mimetype": mimetype,
        "url_private_download": f"https://files.slack.com/files-pri/T1-{file_id}/download/{name}",
    }


def test_upload_becomes_one_request_with_file_key() -> None:
    """A file_share message yields its image file, keyed by channel and file id."""
    event = _message(subtype="file_share", files=[_file()])
    [request] = extract.from_message_event(event, "T1")
    assert request.image.file_id == "F1"
    assert request.image.url.endswith("/download/cat.png")
    assert request.origin.trigger is Trigger.UPLOAD
    assert request.dedup_key == "file:C1:F1"


def test_file_shared_uses_the_same_key_as_the_message() -> None:
    """The same upload seen through file_shared dedups against the file_share message."""
    [from_message] = extract.from_message_event(
        _message(subtype="file_share", files=[_file()]), "T1"
    )
    [from_shared] = extract.from_file_shared_event(
        {"type": "file_shared", "file_id": "F1", "channel_id": "C1", "user_id": "U1"}, "T1"
    )
    assert from_shared.dedup_key == from_message.dedup_key
    assert from_shared.image.url is None  # resolved later with files.info


@pytest.mark.parametrize(
    ("mimetype", "name", "claimed"),
    [
        ("image/jpeg", "x.bin", True),
        ("application/octet-stream", "photo.HEIC", True),
        ("text/plain", "notes.txt", False),
        ("application/pdf", "scan.pdf", False),
        (None, "noext", False),
    ],
)
def test_only_files_claiming_to_be_images_are_taken(
    mimetype: str | None, name: str, claimed: bool
) -> None:
    """Files that do not claim to be images (by mimetype or name) are ignored."""
    event = _message(subtype="file_share", files=[_file(name=name, mimetype=mimetype)])
    assert bool(extract.from_message_event(event, "T1")) is claimed


def test_links_in_slack_markup_are_found_once_and_unescaped() -> None:
    """<url|label> and <url> are understood; &amp; is unescaped; repeats collapse."""
    text = "look <https://a.example/x.png|a pic> and <https://b.example/?a=1&amp;b=2> <https://a.example/x.png>"
    requests = extract.from_message_event(_message(text=text), "T1")
    assert [r.image.url for r in requests] == [
        "https://a.example/x.png",
        "https://b.example/?a=1&b=2",
    ]
    assert requests[0].origin.trigger is Trigger.LINK
    assert requests[0].dedup_key == "link:C1:100.1:https://a.example/x.png"


def test_links_in_rich_text_blocks_are_found() -> None:
    """Links that only appear as rich_text `link` elements are scanned too."""
    blocks = [
        {
            "type": "rich_text",
            "elements": [
                {
                    "type": "rich_text_section",
                    "elements": [{"type": "link", "url": "https://c.example/y.jpg"}],
                }
            ],
        }
    ]
    [request] = extract.from_message_event(_message(text="", blocks=blocks), "T1")
    assert request.image.url == "https://c.example/y.jpg"


def test_non_http_schemes_and_floods_are_not_taken() -> None:
    """Only http(s) links, and at most MAX_LINKS_PER_MESSAGE of them, are scanned."""
    links = " ".join(f"<https://x.example/{n}.png>" for n in range(50))
    text = f"<file:///etc/passwd> <ftp://x.example/a.png> {links}"
    requests = extract.from_message_event(_message(text=text), "T1")
    assert len(requests) == extract.MAX_LINKS_PER_MESSAGE
    assert all(r.image.url.startswith("https://") for r in requests)


@pytest.mark.parametrize("subtype", ["message_deleted", "channel_join"])
def test_deletions_and_joins_are_not_scanned(subtype: str) -> None:
    """Only posts are scanned, not housekeeping messages."""
    event = _message(subtype=subtype, text="<https://a.example/x.png>")
    assert extract.from_message_event(event, "T1") == []


def _edit(message: dict[str, object], previous: dict[str, object] | None) -> dict[str, object]:
    """A `message_changed` event as Slack sends it: the message now and, usually, before."""
    event: dict[str, object] = {
        "type": "message",
        "subtype": "message_changed",
        "channel": "C1",
        "hidden": True,
        "ts": "200.9",  # the edit's own ts; the message keeps its ts
        "message": {"type": "message", "user": "U1", "ts": "100.1", **message},
    }
    if previous is not None:
        event["previous_message"] = {"type": "message", "user": "U1", "ts": "100.1", **previous}
    return event


def test_an_edit_yields_only_the_links_and_files_it_added() -> None:
    """An edit adding a link and a file is scanned for those; what was there is not repeated."""
    before = {"text": "<https://a.example/old.png>", "files": [_file("F1")]}
    after = {"text": "<https://a.example/old.png> <https://a.example/new.png>"}
    event = _edit({**after, "files": [_file("F1"), _file("F2", "dog.png")]}, before)
    requests = extract.from_message_event(event, "T1")
    assert [r.dedup_key for r in requests] == [
        "file:C1:F2",
        "link:C1:100.1:https://a.example/new.png",
    ]
    assert requests[1].origin.message_ts == "100.1"
    assert requests[1].origin.user == "U1"


def test_an_edit_keys_old_images_as_their_post_did() -> None:
    """Without previous_message, the images already there get the keys their post gave them."""
    post = _message(text="<https://a.example/x.png>", files=[_file()])
    edit = _edit({"text": "<https://a.example/x.png> edited", "files": [_file()]}, None)
    keys = {r.dedup_key for r in extract.from_message_event(post, "T1")}
    assert {r.dedup_key for r in extract.from_message_event(edit, "T1")} == keys


def test_an_edited_housekeeping_message_is_not_scanned() -> None:
    """An edit of a message that would not be scanned as a post is not scanned either."""
    event = _edit({"subtype": "channel_join", "text": "<https://a.example/x.png>"}, {})
    assert extract.from_message_event(event, "T1") == []


def test_image_blocks_and_attachment_images_are_links() -> None:
    """Block Kit image blocks/elements and attachments[].image_url are scanned like links."""
    blocks = [
        {"type": "image", "image_url": "https://a.example/block.png", "alt_text": "a"},
        {
            "type": "context",
            "elements": [{"type": "image", "image_url": "https://a.example/icon.png"}],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "no image here"}},
    ]
    attachments = [
        {"fallback": "x", "image_url": "https://a.example/att.gif"},
        {"blocks": [{"type": "image", "image_url": "https://a.example/inner.jpg"}]},
        {"thumb_url": "https://a.example/thumb.png"},
    ]
    event = _message(subtype="bot_message", bot_id="B1", blocks=blocks, attachments=attachments)
    event.pop("user")
    requests = extract.from_message_event(event, "T1")
    assert [r.image.url for r in requests] == [
        "https://a.example/block.png",
        "https://a.example/icon.png",
        "https://a.example/att.gif",
        "https://a.example/inner.jpg",
    ]
    assert requests[0].origin.user == "B1"
    assert requests[2].dedup_key == "link:C1:100.1:https://a.example/att.gif"


def test_image_urls_share_the_per_message_link_cap() -> None:
    """Text links, image blocks and attachments together stay within MAX_LINKS_PER_MESSAGE."""
    text = " ".join(f"<https://x.example/{n}.png>" for n in range(6))
    blocks = [{"type": "image", "image_url": f"https://y.example/{n}.png"} for n in range(6)]
    attachments = [{"image_url": f"https://z.example/{n}.png"} for n in range(6)]
    event = _message(text=text, blocks=blocks, attachments=attachments)
    assert len(extract.from_message_event(event, "T1")) == extract.MAX_LINKS_PER_MESSAGE


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("", CommandKind.HELP),
        ("help", CommandKind.HELP),
        ("policy", CommandKind.POLICY),
        ("POLICY", CommandKind.POLICY),
        ("https://a.example/x.png", CommandKind.SCAN),
        ("<https://a.example/x.png>", CommandKind.SCAN),
        ("not a url", CommandKind.INVALID),
    ],
)
def test_moderate_command_parsing(text: str, kind: CommandKind) -> None:
    """/moderate understands help, policy and a URL (raw or in Slack markup)."""
    parsed = extract.parse_command(
        {
            "text": text,
            "channel_id": "C1",
            "user_id": "U1",
            "trigger_id": "t1",
            "response_url": "https://hooks.slack.com/x",
        }
    )
    assert parsed.kind is kind
    if kind is CommandKind.SCAN:
        assert parsed.request is not None
        assert parsed.request.image.url == "https://a.example/x.png"
        assert parsed.request.origin.response_url == "https://hooks.slack.com/x"


def test_shortcut_scans_files_and_links_of_the_chosen_message() -> None:
    """The message shortcut takes every image of the message and answers the invoker."""
    shortcut = {
        "type": "message_action",
        "callback_id": "modbot_moderate_message",
        "trigger_id": "tr1",
        "response_url": "https://hooks.slack.com/r",
        "channel": {"id": "C9"},
        "team": {"id": "T1"},
        "message": {
            "ts": "5.5",
            "user": "U7",
            "text": "<https://a.example/p.png>",
            "files": [_file("F2")],
        },
    }
    requests = extract.from_message_shortcut(shortcut)
    assert [r.image.file_id or r.image.url for r in requests] == ["F2", "https://a.example/p.png"]
    assert {r.origin.trigger for r in requests} == {Trigger.SHORTCUT}
    assert requests[0].origin.response_url == "https://hooks.slack.com/r"
    assert all(r.dedup_key.startswith("shortcut:tr1:") for r in requests)
