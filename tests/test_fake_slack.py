"""Tests of the fake Slack itself, driven by the real slack_sdk and slack_bolt clients.

If these pass, a bot test that fails against the fake fails because of the bot, not the fake.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes import slack_payloads as payloads
from tests.fakes.slack import FakeSlack

REPO_ROOT = Path(__file__).resolve().parents[1]
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
SECRET = "test-signing-secret"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Proxy variables would route 127.0.0.1 through a proxy, and SLACK_* change how Bolt builds
    # the app (slack.md gotchas 5 and 6).
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("SLACK_")]:
        monkeypatch.delenv(name)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, timeout=5)


# ----------------------------------------------------------------------------------- Web API


async def test_post_message_records_json_params(fake: FakeSlack, client: AsyncWebClient) -> None:
    """chat.postMessage's JSON body is recorded with parsed values and stored as a message."""
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    resp = await client.chat_postMessage(channel="C1", text="hi", blocks=blocks, thread_ts="1.2")

    (call,) = fake.calls_to("chat.postMessage")
    assert call.http_verb == "POST"
    assert call.authorization == f"Bearer {fake.bot_token}"
    assert call.params == {"channel": "C1", "text": "hi", "blocks": blocks, "thread_ts": "1.2"}
    (message,) = fake.messages["C1"]
    assert message["ts"] == resp["ts"]
    assert (message["text"], message["blocks"], message["thread_ts"]) == ("hi", blocks, "1.2")


async def test_post_message_ts_increases(client: AsyncWebClient) -> None:
    """Successive posts get increasing Slack-style timestamps."""
    first = await client.chat_postMessage(channel="C1", text="a")
    second = await client.chat_postMessage(channel="C2", text="b")
    assert first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])


async def test_post_message_refuses_missing_channel_or_text(client: AsyncWebClient) -> None:
    """chat.postMessage without a channel, or without text and blocks, answers ok:false."""
    with pytest.raises(SlackApiError) as no_channel:
        await client.api_call("chat.postMessage", json={"text": "x"})
    with pytest.raises(SlackApiError) as no_text:
        await client.api_call("chat.postMessage", json={"channel": "C1"})
    assert no_channel.value.response["error"] == "channel_not_found"
    assert no_text.value.response["error"] == "no_text"


async def test_files_info_is_get_with_query(fake: FakeSlack, client: AsyncWebClient) -> None:
    """files.info arrives as GET with the file id in the query and returns the added file."""
    added = fake.add_file(PNG_BYTES, name="cat.png", mimetype="image/png", channel="C1", user="U1")
    resp = await client.files_info(file=added["id"])

    (call,) = fake.calls_to("files.info")
    assert call.http_verb == "GET"
    assert call.params == {"file": added["id"]}
    assert resp["file"]["url_private_download"] == (
        f"{fake.url}/files-pri/{fake.team}-{added['id']}/download/cat.png"
    )
    assert (resp["file"]["size"], resp["file"]["filetype"]) == (len(PNG_BYTES), "png")
    with pytest.raises(SlackApiError, match="file_not_found"):
        await client.files_info(file="F_MISSING")


async def test_auth_test_is_post_with_empty_params(fake: FakeSlack, client: AsyncWebClient) -> None:
    """auth.test arrives as POST with no params and returns the bot's identity."""
    resp = await client.auth_test()
    (call,) = fake.calls_to("auth.test")
    assert (call.http_verb, call.params) == ("POST", {})
    assert (resp["user_id"], resp["bot_id"], resp["team_id"]) == ("U0BOT", "B0BOT", "T0TEST")


async def test_wrong_token_is_invalid_auth(fake: FakeSlack) -> None:
    """An unknown token is refused with invalid_auth; the app-level token, which only opens
    Socket Mode connections, with not_allowed_token_type (as Slack does)."""
    wrong = AsyncWebClient(token="xoxb-someone-else", base_url=fake.api_url)
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await wrong.auth_test()
    app_token = AsyncWebClient(token=fake.app_token, base_url=fake.api_url)
    with pytest.raises(SlackApiError, match="not_allowed_token_type"):
        await app_token.chat_postMessage(channel="C1", text="x")


async def test_update_ephemeral_permalink(fake: FakeSlack, client: AsyncWebClient) -> None:
    """chat.update edits the stored message; postEphemeral and getPermalink behave like Slack."""
    posted = await client.chat_postMessage(channel="C1", text="before")
    await client.chat_update(channel="C1", ts=posted["ts"], text="after", blocks=[])
    await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    link = await client.chat_getPermalink(channel="C1", message_ts=posted["ts"])

    assert fake.messages["C1"][0]["text"] == "after"
    assert fake.ephemerals[0]["user"] == "U1"
    assert link["permalink"] == (
        f"https://fake.slack.com/archives/C1/p{posted['ts'].replace('.', '')}"
    )
    with pytest.raises(SlackApiError, match="message_not_found"):
        await client.chat_update(channel="C1", ts="1.000000", text="x")


async def test_lookups_users_groups_channels_reactions(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """users.info, usergroups.users.list, conversations.info and reactions.add answer from state."""
    fake.add_user("U1", name="alice")
    fake.add_usergroup("S1", ["U1", "U2"])
    fake.add_channel("C9", name="mod-alerts")

    assert (await client.users_info(user="U1"))["user"]["name"] == "alice"
    assert (await client.usergroups_users_list(usergroup="S1"))["users"] == ["U1", "U2"]
    assert (await client.conversations_info(channel="C9"))["channel"]["name"] == "mod-alerts"
    await client.reactions_add(channel="C9", timestamp="1.2", name="eyes")
    with pytest.raises(SlackApiError, match="already_reacted"):
        await client.reactions_add(channel="C9", timestamp="1.2", name="eyes")
    with pytest.raises(SlackApiError, match="user_not_found"):
        await client.users_info(user="U404")
    assert (await client.api_call("team.info"))["ok"] is True


async def test_ratelimit_is_retried_by_sdk_handler(fake: FakeSlack) -> None:
    """A scripted 429 with Retry-After 0 is retried by AsyncRateLimitErrorRetryHandler."""
    fake.fail_next(
        "chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "0"}
    )
    retrying = AsyncWebClient(
        token=fake.bot_token,
        base_url=fake.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    await retrying.chat_postMessage(channel="C1", text="eventually")
    assert len(fake.calls_to("chat.postMessage")) == 2
    assert len(fake.messages["C1"]) == 1


async def test_scripted_server_error(fake: FakeSlack, client: AsyncWebClient) -> None:
    """A scripted 500 surfaces as SlackApiError, and only for the scripted number of calls."""
    fake.fail_next("files.info", 500, count=1)
    with pytest.raises(SlackApiError) as err:
        await client.files_info(file="F1")
    assert err.value.response.status_code == 500
    with pytest.raises(SlackApiError, match="file_not_found"):
        await client.files_info(file="F1")


# ----------------------------------------------------------------------------------- files


async def test_file_download_needs_bearer(fake: FakeSlack) -> None:
    """Downloads return the bytes with the bot token and Slack's HTML login page without it."""
    added = fake.add_file(PNG_BYTES, name="cat.png", mimetype="image/png", channel="C1", user="U1")
    url = added["url_private_download"]
    async with aiohttp.ClientSession() as session:
        auth = {"Authorization": f"Bearer {fake.bot_token}"}
        async with session.get(url, headers=auth) as with_token:
            assert with_token.status == 200
            assert with_token.content_type == "image/png"
            assert await with_token.read() == PNG_BYTES
        async with session.get(url) as without_token:
            assert without_token.status == 200
            assert without_token.content_type == "text/html"
            assert b"<html" in await without_token.read()

    assert [r.authorization for r in fake.file_requests] == [auth["Authorization"], None]
    assert {r.file_id for r in fake.file_requests} == {added["id"]}


async def test_file_redirect_to_other_origin(fake: FakeSlack) -> None:
    """redirect_file makes the download answer 302 to the given URL."""
    added = fake.add_file(PNG_BYTES, name="a.png", mimetype="image/png", channel="C1", user="U1")
    fake.redirect_file(added["id"], "http://localhost:1/elsewhere.png")
    async with (
        aiohttp.ClientSession() as session,
        session.get(added["url_private"], allow_redirects=False) as resp,
    ):
        assert resp.status == 302
        assert resp.headers["Location"] == "http://localhost:1/elsewhere.png"
    assert fake.file_requests[0].status == 302


async def test_response_url_records_posts(fake: FakeSlack) -> None:
    """POSTs to a response_url (as Bolt's respond() sends them) are recorded per key."""
    webhook = AsyncWebhookClient(url=fake.response_url("cmd-1"))
    resp = await webhook.send(text="done", response_type="ephemeral")
    assert resp.status_code == 200
    assert fake.responses == [{"text": "done", "response_type": "ephemeral"}]
    assert fake.responses_by_key["cmd-1"] == fake.responses


async def test_wait_for_timeout_says_what_happened(fake: FakeSlack, client: AsyncWebClient) -> None:
    """wait_for fails with an AssertionError listing the calls seen so far."""
    await client.auth_test()
    with pytest.raises(AssertionError, match=r"auth\.test"):
        await fake.wait_for(lambda: bool(fake.messages), timeout=0.05)


# ----------------------------------------------------------------------------------- Socket Mode


@pytest.fixture
async def bolt(fake: FakeSlack) -> AsyncIterator[tuple[AsyncApp, dict[str, list[Any]]]]:
    """A real AsyncApp with a message and a /moderate listener, connected over Socket Mode."""
    # Built inside the running loop: the handler makes its aiohttp session in __init__ (gotcha 4).
    app = AsyncApp(client=AsyncWebClient(token=fake.bot_token, base_url=fake.api_url))
    seen: dict[str, list[Any]] = {"messages": [], "commands": []}

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        seen["messages"].append(event)

    @app.command("/moderate")
    async def on_moderate(ack: Any, command: dict[str, str]) -> None:
        seen["commands"].append(command)
        await ack("Working on it")

    handler = AsyncSocketModeHandler(app, fake.app_token)
    await handler.connect_async()
    await fake.wait_connected()
    yield app, seen
    await handler.close_async()


async def test_socket_mode_event_is_delivered_and_acked(
    fake: FakeSlack, bolt: tuple[AsyncApp, dict[str, list[Any]]]
) -> None:
    """A pushed events_api envelope reaches the Bolt listener and its ack is recorded."""
    _, seen = bolt
    body = payloads.message_event("C1", "U1", "hello <https://x.example/a.png>")
    envelope_id = await fake.push(payloads.envelope("events_api", body))

    assert await fake.wait_ack(envelope_id) == {"envelope_id": envelope_id}
    await fake.wait_for(lambda: len(seen["messages"]) == 1)
    assert seen["messages"][0]["text"] == "hello <https://x.example/a.png>"
    (opened,) = fake.calls_to("apps.connections.open")
    assert opened.authorization == f"Bearer {fake.app_token}"
    assert fake.link.tickets_seen == ["1"]


async def test_socket_mode_command_ack_carries_payload(
    fake: FakeSlack, bolt: tuple[AsyncApp, dict[str, list[Any]]]
) -> None:
    """A slash_commands envelope is acked with the listener's ack text as payload."""
    _, seen = bolt
    command = payloads.slash_command("help", "C1", "U1", fake.response_url())
    envelope_id = await fake.push(payloads.envelope("slash_commands", command))

    ack = await fake.wait_ack(envelope_id)
    assert ack["payload"] == {"text": "Working on it"}
    assert seen["commands"][0]["text"] == "help"


async def test_socket_mode_unhandled_envelope_is_not_acked(
    fake: FakeSlack, bolt: tuple[AsyncApp, dict[str, list[Any]]]
) -> None:
    """An interaction no listener handles gets no ack, as Bolt behaves against real Slack."""
    action = payloads.block_action("nobody_listens", "v", "U1", "C1", "1.2", fake.response_url())
    envelope_id = await fake.push(payloads.envelope("interactive", action))
    await fake.assert_no_ack(envelope_id, within=0.3)


async def test_socket_mode_disconnect_reconnects(
    fake: FakeSlack, bolt: tuple[AsyncApp, dict[str, list[Any]]]
) -> None:
    """A disconnect frame makes slack_sdk open a new link, which then receives envelopes."""
    await fake.send_disconnect()
    await fake.wait_connected(connections=2)
    await fake.wait_for(lambda: len(fake.link.open_sockets) == 1)
    assert fake.connections_opened == 2

    envelope_id = await fake.push(
        payloads.envelope("events_api", payloads.message_event("C1", "U1", "x"))
    )
    await fake.wait_ack(envelope_id)


# ----------------------------------------------------------------------------------- payloads


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("events_api", payloads.file_shared_event("F1", "C1", "U1")),
        (
            "slash_commands",
            payloads.slash_command(
                "scan https://x.example/a?b=c&d", "C1", "U1", "http://127.0.0.1:1/response/x"
            ),
        ),
        (
            "interactive",
            payloads.message_shortcut(
                "modbot_moderate_message",
                {"ts": "1.2"},
                "C1",
                "U1",
                "http://127.0.0.1:1/response/x",
            ),
        ),
    ],
)
def test_signed_headers_verify_with_sdk(kind: str, payload: dict[str, Any]) -> None:
    """signed_headers produce signatures slack_sdk's SignatureVerifier accepts, fresh only."""
    body, _content_type = payloads.http_body(kind, payload)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(body, payloads.signed_headers(SECRET, body))
    stale = payloads.signed_headers(SECRET, body, timestamp=int(time.time()) - 301)
    assert not verifier.is_valid_request(body, stale)
    assert not verifier.is_valid_request(body, payloads.signed_headers("other", body))


def test_http_body_encodings() -> None:
    """Events go as JSON, commands as form fields, interactions as form payload=<json>."""
    command = payloads.slash_command("help", "C1", "U1", "http://r")
    action = payloads.block_action("modbot_approve", "scan-1", "U1", "C9", "1.2", "http://r")

    body, content_type = payloads.http_body("slash_commands", command)
    assert content_type == "application/x-www-form-urlencoded"
    assert parse_qs(body)["command"] == ["/moderate"]
    body, _ = payloads.http_body("interactive", action)
    assert list(parse_qs(body)) == ["payload"]
    assert payloads.http_body("events_api", {"a": 1}) == ('{"a": 1}', "application/json")


def test_message_event_shapes() -> None:
    """message_event builds a file_share event with files, and rich_text link elements."""
    file_obj = {"id": "F1", "name": "a.png", "mimetype": "image/png"}
    with_file = payloads.message_event("C1", "U1", "see", files=[file_obj], event_id="Ev1")
    plain = payloads.message_event("C1", "U1", "<https://x.example/a.png|pic> &amp; more")

    assert with_file["event"]["subtype"] == "file_share"
    assert with_file["event"]["files"] == [file_obj]
    assert with_file["event_id"] == "Ev1"
    assert "subtype" not in plain["event"]
    assert "files" not in plain["event"]
    elements = plain["event"]["blocks"][0]["elements"][0]["elements"]
    assert elements == [
        {"type": "link", "url": "https://x.example/a.png", "text": "pic"},
        {"type": "text", "text": " & more"},
    ]
    assert plain["event_id"] != payloads.message_event("C1", "U1", "x")["event_id"]


async def test_signed_command_dispatches_in_bolt(fake: FakeSlack) -> None:
    """A signed slash-command body from the builders is accepted by Bolt's HTTP-mode checks."""
    app = AsyncApp(
        client=AsyncWebClient(token=fake.bot_token, base_url=fake.api_url), signing_secret=SECRET
    )
    got: list[str] = []

    @app.command("/moderate")
    async def on_moderate(ack: Any, command: dict[str, str]) -> None:
        got.append(command["text"])
        await ack()

    body, content_type = payloads.http_body(
        "slash_commands", payloads.slash_command("policy", "C1", "U1", fake.response_url())
    )
    headers = {**payloads.signed_headers(SECRET, body), "Content-Type": content_type}
    resp = await app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))
    assert resp.status == 200
    assert got == ["policy"]


def test_block_action_and_shortcut_fill_ids() -> None:
    """block_action and message_shortcut put the given ids where Bolt reads them."""
    action = payloads.block_action("modbot_approve", "scan-1", "U7", "C9", "1.2", "http://r")
    assert action["actions"][0]["action_id"] == "modbot_approve"
    assert action["container"] == {
        "type": "message",
        "message_ts": "1.2",
        "channel_id": "C9",
        "is_ephemeral": False,
    }
    shortcut = payloads.message_shortcut("cb", {"ts": "3.4", "text": "t"}, "C2", "U3", "http://r")
    assert (shortcut["callback_id"], shortcut["message_ts"]) == ("cb", "3.4")
    assert (shortcut["channel"]["id"], shortcut["user"]["id"]) == ("C2", "U3")


# ----------------------------------------------------------------------------------- standalone


async def test_standalone_mode_over_control_routes() -> None:
    """`python -m tests.fakes.slack` prints its URL first and is scriptable over /_fake/ routes."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.slack",
        "--port",
        "0",
        "--latency-ms",
        "5",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), timeout=10)).decode().strip()
        assert url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as session:
            params = {"name": "a.png", "mimetype": "image/png", "channel": "C1", "user": "U1"}
            async with session.post(f"{url}/_fake/files", params=params, data=PNG_BYTES) as r:
                file_id = (await r.json())["file"]["id"]
            async with session.post(f"{url}/_fake/latency", json={"seconds": 0}) as r:
                assert r.status == 200
            client = AsyncWebClient(token="xoxb-test-token", base_url=f"{url}/api/")
            await client.files_info(file=file_id)
            await client.chat_postMessage(channel="C1", text="hi")
            async with session.get(f"{url}/_fake/calls", params={"method": "files.info"}) as r:
                calls = await r.json()
            async with session.get(f"{url}/_fake/messages") as r:
                messages = await r.json()
        assert [c["params"] for c in calls] == [{"file": file_id}]
        assert messages["C1"][0]["text"] == "hi"
    finally:
        proc.terminate()
        await proc.wait()


# ----------------------------------------------------------------------------------- faults


async def test_per_channel_rate_limit_answers_429_with_retry_after(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """rate_limit: a burst passes, the next post to that channel gets 429 ratelimited with an
    integer Retry-After; another channel has its own budget."""
    fake.rate_limit("chat.postMessage", per_second=1.0, burst=2)
    await client.chat_postMessage(channel="C1", text="a")
    await client.chat_postMessage(channel="C1", text="b")
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C1", text="c")
    assert refused.value.response.status_code == 429
    assert refused.value.response["error"] == "ratelimited"
    assert int(refused.value.response.headers["Retry-After"]) >= 1
    await client.chat_postMessage(channel="C2", text="elsewhere")
    assert fake.rate_limited == 1


async def test_outage_switch_fails_every_call_until_switched_back(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """An outage answers 503, or (drop_connections) resets the connection; end_outage restores
    service."""
    fake.start_outage()
    with pytest.raises(SlackApiError) as unavailable:
        await client.auth_test()
    assert unavailable.value.response.status_code == 503
    fake.start_outage(drop_connections=True)
    with pytest.raises(aiohttp.ClientError):
        await client.auth_test()
    fake.end_outage()
    assert (await client.auth_test())["ok"]


async def test_history_honours_oldest_limit_and_cursor() -> None:
    """conversations.history: newest first, only after `oldest`, in `limit`-sized pages linked
    by response_metadata.next_cursor."""
    fake = FakeSlack(wall_clock_ts=True)
    await fake.start()
    try:
        early = fake.post_message("C1", "before")
        posted = [fake.post_message("C1", f"m{n}") for n in range(5)]
        paged = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, timeout=5)
        seen: list[str] = []
        cursor = None
        while True:
            page = await paged.conversations_history(
                channel="C1", oldest=early["ts"], limit=2, cursor=cursor
            )
            seen += [m["text"] for m in page["messages"]]
            cursor = page.get("response_metadata", {}).get("next_cursor")
            if not cursor:
                break
        assert seen == [m["text"] for m in reversed(posted)]
        assert float(early["ts"]) > 1_700_000_000 + 3600 * 24 * 365  # the real clock
    finally:
        await fake.close()


async def test_deletes_depend_on_the_token(fake: FakeSlack, client: AsyncWebClient) -> None:
    """The bot deletes only its own files and messages (cant_delete_*); the admin token
    deletes anyone's given its user scopes (missing_scope) and the workspace's leave
    (restricted_action); deleted things answer file_deleted / message_not_found."""
    admin = AsyncWebClient(token=fake.admin_token, base_url=fake.api_url)
    file = fake.add_file(b"x", name="a.png", mimetype="image/png", channel="C1", user="U1")
    message = fake.post_as("U1", "C1", "hello")
    with pytest.raises(SlackApiError, match="cant_delete_file"):
        await client.files_delete(file=file["id"])
    with pytest.raises(SlackApiError, match="cant_delete_message"):
        await client.chat_delete(channel="C1", ts=message["ts"])
    fake.admin_scopes = {"chat:write"}
    with pytest.raises(SlackApiError, match="missing_scope"):
        await admin.files_delete(file=file["id"])
    fake.admin_scopes = {"chat:write", "files:write"}
    fake.admin_restricted = True
    with pytest.raises(SlackApiError, match="restricted_action"):
        await admin.chat_delete(channel="C1", ts=message["ts"])
    fake.admin_restricted = False
    await admin.files_delete(file=file["id"])
    await admin.chat_delete(channel="C1", ts=message["ts"])
    with pytest.raises(SlackApiError, match="file_deleted"):
        await client.files_info(file=file["id"])
    with pytest.raises(SlackApiError, match="message_not_found"):
        await admin.chat_delete(channel="C1", ts=message["ts"])
    own = await client.chat_postMessage(channel="C1", text="mine")
    await client.chat_delete(channel="C1", ts=own["ts"])
    assert (await admin.auth_test())["user_id"] == fake.admin_user


async def test_views_and_direct_conversations(fake: FakeSlack, client: AsyncWebClient) -> None:
    """views.open wants a trigger and a valid modal; conversations.open refuses unknown and
    deactivated users."""
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Hi"}, "blocks": []}
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        await client.views_open(trigger_id="", view=modal)
    too_long = {**modal, "title": {"type": "plain_text", "text": "x" * 25}}
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.views_open(trigger_id="1.2.3", view=too_long)
    await client.views_open(trigger_id="1.2.3", view=modal)
    assert fake.views[0]["view"] == modal
    with pytest.raises(SlackApiError, match="user_not_found"):
        await client.conversations_open(users="U0NOBODY")
    fake.add_user("U0GONE")["deleted"] = True
    with pytest.raises(SlackApiError, match="user_disabled"):
        await client.conversations_open(users="U0GONE")
    fake.add_user("U0HERE")
    opened = await client.conversations_open(users="U0HERE")
    assert opened["channel"]["id"] == "D0HERE"
