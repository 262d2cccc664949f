"""Images that reach Slack other than as a plain post: edits, image blocks, attachments."""

from __future__ import annotations

from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import FLAG_COLOR, GENERAL, POSTER, REVIEW_COLOR, Bot, Stack


async def test_an_edit_adding_a_link_is_scanned_once_and_the_old_link_is_not_refetched(
    stack: Stack, bot: Bot
) -> None:
    """A link edited into a message is scanned once; the one already there is not fetched again."""
    stack.web.add("/old.png", make_image(REVIEW_COLOR, (200, 200)))
    stack.web.add("/new.png", make_image(FLAG_COLOR, (200, 200)))
    post = payloads.message_event(GENERAL, POSTER, text=f"<{stack.web.url}/old.png>")
    await bot.event(post)
    await bot.idle()
    edit = payloads.message_changed_event(
        post, f"<{stack.web.url}/old.png> and also <{stack.web.url}/new.png>"
    )
    await bot.event(edit)
    await bot.idle()
    await bot.event(edit, retry=1)  # Slack's redelivery of the edit changes nothing either
    await bot.idle()
    assert len(stack.web.hits_to("/old.png")) == 1
    assert len(stack.web.hits_to("/new.png")) == 1
    review, flag = stack.alerts()
    assert review["text"].startswith("Needs review")
    assert flag["text"].startswith("Flagged")
    assert stack.rekognition_calls() == 2


async def test_an_unfurl_or_bot_image_in_an_edit_is_scanned(stack: Stack, bot: Bot) -> None:
    """An attachment image added by an edit (how Slack adds unfurls) is scanned like a link."""
    stack.web.add("/preview", make_image(FLAG_COLOR, (300, 200)), content_type="image/jpeg")
    post = payloads.message_event(GENERAL, POSTER, text="see https://news.example/story")
    await bot.event(post)
    await bot.idle()
    preview = {"id": 1, "title": "Story", "image_url": f"{stack.web.url}/preview"}
    edit = payloads.message_changed_event(post, post["event"]["text"], attachments=[preview])
    await bot.event(edit)
    await bot.idle()
    [alert] = stack.alerts()
    assert alert["text"].startswith("Flagged")


async def test_image_block_and_attachment_image_url_are_scanned(stack: Stack, bot: Bot) -> None:
    """A bot_message with an image block and an attachment image: both fetched and scanned."""
    stack.web.add("/block.png", make_image(REVIEW_COLOR, (200, 200)))
    stack.web.add("/att.png", make_image(FLAG_COLOR, (200, 200)))
    body = payloads.message_event(GENERAL, POSTER, subtype="bot_message")
    event = body["event"]
    event.pop("user")
    event["bot_id"] = "B0INTEGRATION"
    event["blocks"] = [
        {"type": "image", "image_url": f"{stack.web.url}/block.png", "alt_text": "chart"}
    ]
    event["attachments"] = [{"fallback": "pic", "image_url": f"{stack.web.url}/att.png"}]
    await bot.event(body)
    await bot.idle()
    assert sorted(alert["text"].split(":")[0] for alert in stack.alerts()) == [
        "Flagged",
        "Needs review",
    ]
    assert stack.rekognition_calls() == 2
