"""An in-process fake of Slack (Web API, file downloads, response_url, Socket Mode) over real HTTP.

The real slack_sdk / slack_bolt clients talk to it through `base_url=fake.api_url`, so tests
exercise the same wire formats as production (slack.md §3, §4, §6). Run it standalone with
`python -m tests.fakes.slack --port N --latency-ms 50` for benchmarks; the `/_fake/...` routes
then script it over HTTP.
"""

# Waiting helpers take a timeout (not asyncio.timeout) so a failure says what was awaited.
# ruff: noqa: ASYNC109

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import mimetypes
import signal
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from aiohttp import web

from tests.fakes.slack_socket import SocketLink, poll_until

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yaml"

# What files.slack.com answers when the bearer token (or the files:read scope) is missing:
# 200 with a login page, not 401 (slack.md §6.3).
_LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Slack</title></head>"
    "<body><h1>Sign in to your workspace</h1></body></html>"
)
# The first ts handed out is 1700000000.000100, like the examples in slack.md.
_FIRST_TS_MICROS = 1_700_000_000_000_000

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def manifest_bot_scopes() -> list[str]:
    """The bot scopes manifest.yaml asks for: what a correct installation grants."""
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return list(manifest["oauth_config"]["scopes"]["bot"])


@dataclass(frozen=True)
class ApiCall:
    """One Web API request as the fake received it."""

    method: str
    http_verb: str
    params: dict[str, Any]
    authorization: str | None
    time: float


@dataclass(frozen=True)
class FileRequest:
    """One request for a file under /files-pri/."""

    path: str
    authorization: str | None
    file_id: str | None
    status: int


@dataclass
class _Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class FakeSlack:
    """A Slack workspace with one bot, served on 127.0.0.1 for the length of a test."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-1-test",
        team: str = "T0TEST",
        bot_user: str = "U0BOT",
        bot_id: str = "B0BOT",
        host: str = "127.0.0.1",
        wall_clock_ts: bool = False,
        admin_token: str = "xoxp-test-admin",
        admin_user: str = "U0ADMIN",
    ) -> None:
        # A workspace Admin's user token (SLACK_ADMIN_TOKEN): it may delete anyone's files and
        # messages, given the user scopes; the bot token may delete only the bot's own.
        self.admin_token = admin_token
        self.admin_user = admin_user
        self.admin_scopes = {"chat:write", "files:write"}
        self.admin_restricted = False  # workspace settings forbid deleting: restricted_action
        self.deleted_files: set[str] = set()
        self.deleted_messages: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self._caller = "bot"  # whose token the call being handled carries: bot | admin
        # wall_clock_ts: message ts follow the real clock (as Slack's do) instead of counting up
        # from 1700000000, so a client that asks for history `oldest=` a real time finds them.
        self.wall_clock_ts = wall_clock_ts
        self.bot_token = bot_token
        self.app_token = app_token
        self.team = team
        self.bot_user = bot_user
        self.bot_id = bot_id
        self.host = host
        self.url = ""
        self.api_url = ""
        self.socket_url = ""
        self.calls: list[ApiCall] = []
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.responses_by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.reactions: list[dict[str, Any]] = []
        self.file_requests: list[FileRequest] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.connections_opened = 0
        # The bot token's scopes, sent back in every answer's `x-oauth-scopes` header (as Slack
        # does): by default exactly what manifest.yaml asks for; tests take some away.
        self.scopes: list[str] = manifest_bot_scopes()
        # User tokens (xoxp-): token -> (user id, user scopes), e.g. an admin's for removals.
        self.user_tokens: dict[str, tuple[str, list[str]]] = {}
        # App Home views published, by user id (the latest one), and every publish in order.
        self.home_views: dict[str, dict[str, Any]] = {}
        self.views_published: list[dict[str, Any]] = []
        self.link = SocketLink()
        self._file_bytes: dict[str, bytes] = {}
        self._redirects: dict[str, str] = {}
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._latency = 0.0
        self._outage: _Failure | None = None
        self._outage_drops = False
        self._held: dict[str, deque[asyncio.Event]] = defaultdict(deque)
        self._fail_after: dict[str, deque[_Failure]] = defaultdict(deque)
        self._rate_limits: dict[str, tuple[float, float]] = {}  # method -> (per second, burst)
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, at)
        self.rate_limited = 0  # 429s answered by the per-channel rate limit
        self._ts_micros = _FIRST_TS_MICROS
        self._file_seq = 0
        self._runner: web.AppRunner | None = None
        self._handlers: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "files.info": self._files_info,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "reactions.add": self._reactions_add,
            "files.delete": self._files_delete,
            "chat.delete": self._chat_delete,
            "conversations.open": self._conversations_open,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
        }
        self.add_user(admin_user, name="admin")["is_admin"] = True

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self, port: int = 0) -> None:
        """Bind the server (port 0 picks a free one) and fill in the URLs."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files-pri/{team_file}/{tail:.*}", self._download)
        app.router.add_post("/response/{key}", self._response_url)
        app.router.add_get("/link", self.link.handle)
        app.router.add_get("/link/", self.link.handle)
        _add_control_routes(app, self)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{bound_port}"
        self.api_url = f"{self.url}/api/"
        self.socket_url = f"ws://{self.host}:{bound_port}/link"

    async def close(self) -> None:
        """Close open sockets first: aiohttp's cleanup would otherwise wait on their handlers."""
        await self.link.close_sockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ----------------------------------------------------------------------------- scripting

    def calls_to(self, method: str) -> list[ApiCall]:
        """The recorded calls to one Web API method, oldest first."""
        return [call for call in self.calls if call.method == method]

    def add_user(
        self, user_id: str, *, name: str | None = None, admin: bool = False
    ) -> dict[str, Any]:
        """Register a user for users.info (`admin`: a workspace Admin)."""
        name = name or user_id.lower()
        user = {
            "id": user_id,
            "team_id": self.team,
            "name": name,
            "real_name": name.title(),
            "is_bot": False,
            "is_admin": admin,
            "is_owner": False,
            "deleted": False,
            "profile": {"display_name": name, "real_name": name.title()},
        }
        self.users[user_id] = user
        return user

    def add_user_token(self, token: str, user_id: str, scopes: list[str]) -> None:
        """A user token (xoxp-) of `user_id` with these user scopes."""
        self.user_tokens[token] = (user_id, list(scopes))

    def add_usergroup(self, group_id: str, members: list[str]) -> None:
        """Register a user group for usergroups.users.list."""
        self.usergroups[group_id] = list(members)

    def add_channel(
        self, channel_id: str, *, name: str | None = None, is_member: bool = True
    ) -> dict[str, Any]:
        """Register a channel for conversations.info (unknown ids get a public default)."""
        channel = _channel_object(channel_id, name=name, is_member=is_member)
        self.channels[channel_id] = channel
        return channel

    def add_file(
        self,
        data: bytes,
        *,
        name: str,
        mimetype: str,
        channel: str,
        user: str,
        file_id: str | None = None,
        filetype: str | None = None,
    ) -> dict[str, Any]:
        """Host `data` as an uploaded file and return its Slack file object (slack.md §5.2)."""
        if not self.url:
            raise RuntimeError("start() the fake before add_file(): file URLs need its origin")
        if file_id is None:
            self._file_seq += 1
            file_id = f"F0FAKE{self._file_seq:04d}"
        if filetype is None:
            filetype = _filetype(name, mimetype)
        created = int(time.time())
        base = f"{self.url}/files-pri/{self.team}-{file_id}"
        quoted = quote(name)
        file_obj: dict[str, Any] = {
            "id": file_id,
            "created": created,
            "timestamp": created,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": user,
            "size": len(data),
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "public_url_shared": False,
            "url_private": f"{base}/{quoted}",
            "url_private_download": f"{base}/download/{quoted}",
            "permalink": f"https://fake.slack.com/files/{user}/{file_id}/{quoted}",
            "channels": [channel],
            "has_rich_preview": False,
        }
        self.files[file_id] = file_obj
        self._file_bytes[file_id] = data
        return dict(file_obj)

    def fail_next(
        self,
        method: str,
        status: int,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next `count` calls to `method` with this status, body and headers."""
        if body is None:
            body = {"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"}
        for _ in range(count):
            self._failures[method].append(_Failure(status, dict(body), dict(headers or {})))

    def start_outage(self, status: int = 503, *, drop_connections: bool = False) -> None:
        """Every Web API call fails until `end_outage`: answered `status`, or (drop_connections)
        the connection is closed without an answer, as when Slack is unreachable."""
        self._outage = _Failure(status, {"ok": False, "error": "service_unavailable"}, {})
        self._outage_drops = drop_connections

    def end_outage(self) -> None:
        self._outage = None
        self._outage_drops = False

    def hold_next(self, method: str) -> asyncio.Event:
        """The next call to `method` is carried out at once, but answered only once the returned
        event is set: the window in which Slack shows a message its poster has not heard of."""
        release = asyncio.Event()
        self._held[method].append(release)
        return release

    def fail_after_handling(
        self, method: str, error: str = "internal_error", count: int = 1
    ) -> None:
        """The next `count` calls to `method` take effect but are answered `ok: false` (HTTP 200,
        which slack_sdk does not retry): the caller cannot know its message was posted."""
        for _ in range(count):
            self._fail_after[method].append(_Failure(200, {"ok": False, "error": error}, {}))

    def set_latency(self, seconds: float) -> None:
        """Delay every Web API answer by `seconds` (simulated network time for benchmarks)."""
        self._latency = seconds

    def rate_limit(
        self, method: str = "chat.postMessage", *, per_second: float = 1.0, burst: int = 3
    ) -> None:
        """Limit `method` per channel as Slack documents for chat.postMessage: about one call
        per second per channel, short bursts tolerated; beyond that 429 `ratelimited` with an
        integer Retry-After (slack.md §6.2). A token bucket of `burst` calls refilled at
        `per_second`."""
        self._rate_limits[method] = (per_second, float(burst))

    def post_message(self, channel: str, text: str, **fields: Any) -> dict[str, Any]:
        """Someone else posts in `channel` (fills a channel's history for tests)."""
        return self._chat_post_message({"channel": channel, "text": text, **fields})["message"]

    def post_as(self, user: str, channel: str, text: str) -> dict[str, Any]:
        """`user` (a person, not the bot) posts `text` in `channel`; returns the message."""
        message = self.post_message(channel, text)
        message["user"] = user
        message.pop("bot_id", None)
        return message

    def clear_failures(self, method: str) -> None:
        """Forget failures queued with fail_next for `method`."""
        self._failures.pop(method, None)

    def redirect_file(self, file_id: str, to_url: str) -> None:
        """Make downloads of `file_id` answer 302 to `to_url` (for token-confinement tests)."""
        self._redirects[file_id] = to_url

    def response_url(self, key: str = "x") -> str:
        """A response_url on this fake; POSTs land in `responses` and `responses_by_key[key]`."""
        return f"{self.url}/response/{quote(key, safe='')}"

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll `predicate` every 10 ms; on timeout fail with what the fake has seen so far."""
        await poll_until(predicate, timeout, self._describe)

    def _describe(self) -> str:
        methods = [call.method for call in self.calls]
        posted = {channel: len(msgs) for channel, msgs in self.messages.items()}
        return (
            f"condition not met; API calls: {methods}; messages per channel: {posted}; "
            f"ephemerals: {len(self.ephemerals)}; responses: {len(self.responses)}; "
            f"acks: {sorted(self.link.acks)}"
        )

    # ----------------------------------------------------------------------------- Socket Mode

    @property
    def acks(self) -> dict[str, dict[str, Any]]:
        """Ack frames from the client, by envelope_id."""
        return self.link.acks

    async def wait_connected(self, timeout: float = 5.0, *, connections: int = 1) -> None:
        """Wait until `connections` sockets have been accepted in total and one is open."""
        await self.link.wait_connected(timeout, connections=connections)

    async def push(self, envelope: dict[str, Any]) -> str:
        """Push an envelope to the connected client; returns its envelope_id."""
        return await self.link.push(envelope)

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait for and return the ack frame for `envelope_id`."""
        return await self.link.wait_ack(envelope_id, timeout)

    async def assert_no_ack(self, envelope_id: str, within: float = 0.5) -> None:
        """Fail if `envelope_id` is acked within the observation window."""
        await self.link.assert_no_ack(envelope_id, within)

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's `disconnect` frame to every open socket."""
        await self.link.send_disconnect(reason)

    # ----------------------------------------------------------------------------- HTTP

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _merged_params(request)
        authorization = request.headers.get("Authorization")
        self.calls.append(ApiCall(method, request.method, params, authorization, time.time()))
        if self._latency:
            await asyncio.sleep(self._latency)
        refused = self._refusal(request, method, params, authorization)
        if refused is not None:
            return refused
        if method == "apps.connections.open":
            self.connections_opened += 1
            return web.json_response(
                {"ok": True, "url": f"{self.socket_url}?ticket={self.connections_opened}"}
            )
        token = (authorization or "").removeprefix("Bearer ")
        user_token = self.user_tokens.get(token)
        scopes = {"x-oauth-scopes": ",".join(user_token[1] if user_token else self.scopes)}
        if user_token is not None and method == "auth.test":
            return web.json_response(self._auth_test_user(user_token[0]), headers=scopes)
        handler = self._handlers.get(method)
        self._caller = "admin" if authorization == f"Bearer {self.admin_token}" else "bot"
        # Unknown methods succeed so the bot can call anything the fake need not model.
        body = handler(params) if handler else {"ok": True}
        held = self._held.get(method)
        if held:
            await held.popleft().wait()
        after = self._fail_after.get(method)
        if after:
            failure = after.popleft()
            return web.json_response(failure.body, status=failure.status)
        return web.json_response(body, headers=scopes)

    def _refusal(
        self, request: web.Request, method: str, params: dict[str, Any], authorization: str | None
    ) -> web.Response | None:
        """What answers instead of the method: an outage, a queued failure, a bad token, or the
        per-channel rate limit."""
        if self._outage is not None:
            if self._outage_drops and request.transport is not None:
                request.transport.abort()  # the client sees the connection reset, no answer
            return web.json_response(self._outage.body, status=self._outage.status)
        failures = self._failures.get(method)
        if failures:
            failure = failures.popleft()
            return web.json_response(failure.body, status=failure.status, headers=failure.headers)
        auth_error = self._check_token(method, authorization)
        if auth_error:
            return web.json_response({"ok": False, "error": auth_error})
        wait = self._rate_limited(method, str(params.get("channel") or ""))
        if wait is not None:
            self.rate_limited += 1
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return None

    def _rate_limited(self, method: str, channel: str) -> float | None:
        """None if the call may go ahead, else the seconds until the bucket has a token."""
        limit = self._rate_limits.get(method)
        if limit is None:
            return None
        per_second, burst = limit
        now = time.monotonic()
        tokens, at = self._buckets.get((method, channel), (burst, now))
        tokens = min(burst, tokens + (now - at) * per_second)
        if tokens < 1:
            self._buckets[(method, channel)] = (tokens, now)
            return (1 - tokens) / per_second
        self._buckets[(method, channel)] = (tokens - 1, now)
        return None

    def _check_token(self, method: str, authorization: str | None) -> str | None:
        if not authorization:
            return "not_authed"
        if method == "apps.connections.open":
            return None if authorization == f"Bearer {self.app_token}" else "invalid_auth"
        token = authorization.removeprefix("Bearer ")
        if token == self.app_token:
            return "not_allowed_token_type"  # an app-level token only opens connections
        known = {self.bot_token, self.admin_token, *self.user_tokens}
        return None if token in known else "invalid_auth"

    async def _download(self, request: web.Request) -> web.StreamResponse:
        team_file = request.match_info["team_file"]
        file_id = team_file.split("-", 1)[1] if "-" in team_file else None
        authorization = request.headers.get("Authorization")

        def record(status: int) -> None:
            self.file_requests.append(FileRequest(request.path, authorization, file_id, status))

        if file_id in self._redirects:
            record(302)
            raise web.HTTPFound(self._redirects[file_id])
        if authorization != f"Bearer {self.bot_token}":
            record(200)
            return web.Response(text=_LOGIN_PAGE, content_type="text/html")
        if file_id not in self._file_bytes:
            record(404)
            return web.Response(status=404, text="file not found")
        record(200)
        return web.Response(
            body=self._file_bytes[file_id], content_type=self.files[file_id]["mimetype"]
        )

    async def _response_url(self, request: web.Request) -> web.Response:
        text = await request.text()
        try:
            body = json.loads(text)
        except ValueError:
            body = {"_raw": text}
        self.responses.append(body)
        self.responses_by_key[request.match_info["key"]].append(body)
        return web.json_response({"ok": True})

    # ----------------------------------------------------------------------------- methods

    def _next_ts(self) -> str:
        self._ts_micros += 100
        if self.wall_clock_ts:
            self._ts_micros = max(self._ts_micros, int(time.time() * 1_000_000))
        return f"{self._ts_micros // 1_000_000}.{self._ts_micros % 1_000_000:06d}"

    def _auth_test(self, _params: dict[str, Any]) -> dict[str, Any]:
        if self._caller == "admin":  # a user token: no bot_id
            return {
                "ok": True,
                "url": "https://fake.slack.com/",
                "team": "Fake Team",
                "user": "admin",
                "team_id": self.team,
                "user_id": self.admin_user,
                "is_enterprise_install": False,
            }
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "modbot",
            "team_id": self.team,
            "user_id": self.bot_user,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _auth_test_user(self, user_id: str) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": self.users.get(user_id, {}).get("name", user_id.lower()),
            "team_id": self.team,
            "user_id": user_id,
            "is_enterprise_install": False,
        }

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        """A Home tab for one user: `view` (JSON text or object) of type home, <= 100 blocks."""
        user_id = params.get("user_id")
        view = params.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                return {"ok": False, "error": "invalid_arguments"}
        if not str(user_id or "").startswith(("U", "W")):
            return {"ok": False, "error": "user_not_found"}
        if not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        blocks = view.get("blocks")
        if not isinstance(blocks, list) or len(blocks) > 100:
            return {"ok": False, "error": "invalid_blocks"}
        self.home_views[str(user_id)] = view
        self.views_published.append({"user_id": user_id, "view": view})
        return {"ok": True, "view": {"id": f"V{len(self.views_published):08d}", **view}}

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            return {"ok": False, "error": "no_text"}
        message = {
            **_without_auth_fields(params),
            "type": "message",
            "user": self.bot_user,
            "bot_id": self.bot_id,
            "ts": self._next_ts(),
        }
        message.setdefault("text", "")
        message.setdefault("blocks", [])
        message.setdefault("thread_ts", None)
        self.messages[channel].append(message)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("ts")
        found = [m for m in self.messages.get(channel or "", []) if m["ts"] == ts]
        if not found:
            return {"ok": False, "error": "message_not_found"}
        message = found[0]
        for field in ("text", "blocks", "attachments", "metadata"):
            if field in params:
                message[field] = params[field]
        message["edited"] = {"user": self.bot_user, "ts": self._next_ts()}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message["text"],
            "message": message,
        }

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_found"}
        message_ts = self._next_ts()
        self.ephemerals.append({**_without_auth_fields(params), "message_ts": message_ts})
        return {"ok": True, "message_ts": message_ts}

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("message_ts")
        if not channel or not ts:
            return {"ok": False, "error": "message_not_found"}
        permalink = f"https://fake.slack.com/archives/{channel}/p{str(ts).replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": permalink}

    def _files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("file") in self.deleted_files:
            return {"ok": False, "error": "file_deleted"}
        file_obj = self.files.get(params.get("file", ""))
        if file_obj is None:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": file_obj, "comments": [], "response_metadata": {}}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(params.get("user", ""))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        members = self.usergroups.get(params.get("usergroup", ""))
        if members is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(members)}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id = params.get("channel")
        if not channel_id:
            return {"ok": False, "error": "channel_not_found"}
        channel = self.channels.get(channel_id) or _channel_object(channel_id)
        return {"ok": True, "channel": channel}

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages, newest first; metadata only with include_all_metadata.

        Honours `oldest`/`latest` (exclusive unless `inclusive`), `limit` and `cursor` pages
        (`response_metadata.next_cursor`), as Slack does.
        """
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        limit = int(params.get("limit") or 100)
        inclusive = str(params.get("inclusive")).lower() in ("1", "true")
        oldest = float(params.get("oldest") or 0)
        latest = float(params["latest"]) if params.get("latest") else math.inf

        def within(ts: float) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        top = [
            m
            for m in self.messages.get(channel, [])
            if not m.get("thread_ts") and within(float(m["ts"]))
        ]
        with_metadata = str(params.get("include_all_metadata")).lower() in ("1", "true")
        start = int(params.get("cursor") or 0)
        newest_first = list(reversed(top))
        found = [
            m if with_metadata else {k: v for k, v in m.items() if k != "metadata"}
            for m in newest_first[start : start + limit]
        ]
        more = len(top) > start + limit
        body: dict[str, Any] = {"ok": True, "messages": found, "has_more": more}
        if params.get("cursor") or more:
            body["response_metadata"] = {"next_cursor": str(start + limit) if more else ""}
        return body

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        """The thread's parent, then its replies, oldest first; metadata as for history."""
        channel, ts = params.get("channel"), params.get("ts")
        if not channel or not ts:
            return {"ok": False, "error": "invalid_arguments"}
        messages = self.messages.get(channel, [])
        parent = [m for m in messages if m["ts"] == ts]
        if not parent:
            return {"ok": False, "error": "thread_not_found"}
        thread = parent + [m for m in messages if m.get("thread_ts") == ts]
        limit = int(params.get("limit") or 1000)
        with_metadata = str(params.get("include_all_metadata")).lower() in ("1", "true")
        found = [
            m if with_metadata else {k: v for k, v in m.items() if k != "metadata"} for m in thread
        ][:limit]
        return {"ok": True, "messages": found, "has_more": len(thread) > limit}

    def _deletion_refused(self, scope: str, own: bool, cant: str) -> str | None:
        """Slack's answer to a delete by this caller: the bot may delete only its own posts; a
        user token needs the scope, and an Admin (or Owner) behind it, and the workspace's
        leave."""
        if self._caller == "bot":
            return None if own else cant
        if scope not in self.admin_scopes:
            return "missing_scope"
        if self.admin_restricted:
            return "restricted_action"
        user = self.users.get(self.admin_user) or {}
        return None if user.get("is_admin") or user.get("is_owner") else cant

    def _files_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params.get("file") or ""
        if file_id in self.deleted_files:
            return {"ok": False, "error": "file_deleted"}
        file_obj = self.files.get(file_id)
        if file_obj is None:
            return {"ok": False, "error": "file_not_found"}
        refused = self._deletion_refused(
            "files:write", file_obj.get("user") == self.bot_user, "cant_delete_file"
        )
        if refused:
            return {"ok": False, "error": refused}
        del self.files[file_id]
        self._file_bytes.pop(file_id, None)
        self.deleted_files.add(file_id)
        return {"ok": True}

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel") or "", params.get("ts")
        found = [m for m in self.messages.get(channel, []) if m["ts"] == ts]
        if not found:
            return {"ok": False, "error": "message_not_found"}
        message = found[0]
        own = message.get("user") == self.bot_user
        refused = self._deletion_refused("chat:write", own, "cant_delete_message")
        if refused:
            return {"ok": False, "error": refused}
        self.messages[channel].remove(message)
        self.deleted_messages.append(message)
        return {"ok": True, "channel": channel, "ts": ts}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = str(params.get("users") or "")
        if "," in user_id or not user_id:
            return {"ok": False, "error": "invalid_arguments"}
        user = self.users.get(user_id)
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        if user.get("deleted"):
            return {"ok": False, "error": "user_disabled"}
        if user.get("is_bot"):
            return {"ok": False, "error": "cannot_dm_bot"}
        return {"ok": True, "channel": {"id": f"D{user_id[1:]}"}}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = params.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not params.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        problem = _view_problem(view)
        if problem:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [problem]},
            }
        self.views.append({"trigger_id": params["trigger_id"], "view": view})
        return {"ok": True, "view": {**view, "id": f"V0FAKE{len(self.views):04d}"}}

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        if not (params.get("channel") and params.get("timestamp") and params.get("name")):
            return {"ok": False, "error": "invalid_arguments"}
        reaction = {k: params[k] for k in ("channel", "timestamp", "name")}
        if reaction in self.reactions:
            return {"ok": False, "error": "already_reacted"}
        self.reactions.append(reaction)
        return {"ok": True}


# --------------------------------------------------------------------------------- helpers


async def _merged_params(request: web.Request) -> dict[str, Any]:
    """Query string, then form body, then JSON body: slack_sdk uses all three (slack.md §6.1)."""
    params: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return params
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        params.update({k: v if isinstance(v, str) else repr(v) for k, v in form.items()})
    # Form posts carry blocks as a JSON string; Slack accepts either, so store parsed values.
    for field in ("blocks", "attachments"):
        if isinstance(params.get(field), str):
            with contextlib.suppress(ValueError):
                params[field] = json.loads(params[field])
    return params


def _without_auth_fields(params: dict[str, Any]) -> dict[str, Any]:
    # Bolt adds team_id to every call (slack.md gotcha 8); it is not part of the message.
    return {k: v for k, v in params.items() if k not in ("token", "team_id")}


def _channel_object(
    channel_id: str, *, name: str | None = None, is_member: bool = True
) -> dict[str, Any]:
    return {
        "id": channel_id,
        "name": name or channel_id.lower(),
        "is_channel": True,
        "is_private": channel_id.startswith("G"),
        "is_archived": False,
        "is_member": is_member,
    }


def _view_problem(view: Any) -> str | None:
    """What Slack would refuse in a modal (Block Kit limits for views)."""
    if not isinstance(view, dict) or view.get("type") != "modal":
        return "view must be a modal"
    title = (view.get("title") or {}).get("text") or ""
    if not title or len(title) > 24:
        return "title must be 1..24 characters"
    if len(view.get("blocks") or []) > 100 or len(str(view.get("private_metadata", ""))) > 3000:
        return "too many blocks or private_metadata too long"
    return None


def _filetype(name: str, mimetype: str) -> str:
    if "." in name:
        return name.rsplit(".", 1)[1].lower()
    guessed = mimetypes.guess_extension(mimetype) or ".bin"
    return guessed.lstrip(".")


# --------------------------------------------------------------------------------- standalone


def _add_control_routes(app: web.Application, fake: FakeSlack) -> None:
    """HTTP routes that script the fake from another process (benchmarks)."""

    def json_view(get: Callable[[web.Request], Any]) -> Callable[[web.Request], Awaitable[Any]]:
        async def view(request: web.Request) -> web.Response:
            return web.json_response(get(request))

        return view

    async def add_file(request: web.Request) -> web.Response:
        # Raw bytes in the body and metadata in the query keep large images cheap to upload.
        q = request.query
        missing = [k for k in ("name", "mimetype", "channel", "user") if k not in q]
        if missing:
            return web.json_response({"ok": False, "error": f"missing {missing}"}, status=400)
        file_obj = fake.add_file(
            await request.read(),
            name=q["name"],
            mimetype=q["mimetype"],
            channel=q["channel"],
            user=q["user"],
            file_id=q.get("file_id"),
            filetype=q.get("filetype"),
        )
        return web.json_response({"ok": True, "file": file_obj})

    async def set_latency(request: web.Request) -> web.Response:
        body = await request.json()
        fake.set_latency(float(body["seconds"]))
        return web.json_response({"ok": True})

    def calls(request: web.Request) -> list[dict[str, Any]]:
        method = request.query.get("method")
        chosen = fake.calls_to(method) if method else fake.calls
        return [asdict(call) for call in chosen]

    app.router.add_post("/_fake/files", add_file)
    app.router.add_post("/_fake/latency", set_latency)
    app.router.add_get("/_fake/calls", json_view(calls))
    app.router.add_get("/_fake/messages", json_view(lambda _r: fake.messages))
    app.router.add_get("/_fake/ephemerals", json_view(lambda _r: fake.ephemerals))
    app.router.add_get("/_fake/responses", json_view(lambda _r: fake.responses))


async def _serve(port: int, latency_ms: float, host: str) -> None:
    fake = FakeSlack(host=host)
    fake.set_latency(latency_ms / 1000)
    await fake.start(port)
    # The first line is the contract with whoever launched us: the origin to talk to.
    print(fake.url, flush=True)
    print(f"api_url={fake.api_url} socket_url={fake.socket_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.close()


def main(argv: list[str] | None = None) -> None:
    """Run the fake until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.latency_ms, args.host))


if __name__ == "__main__":
    main()
