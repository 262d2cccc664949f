"""`modbot doctor`: the Slack tokens, the bot's scopes and its place in the alerts channel.

Only reading calls: auth.test, conversations.info, users.info and apps.connections.open (which
hands out a WebSocket URL and connects nothing).
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

from bot.ops.doctor_checks import Check, DoctorSettings, fail, ok, skip

# What manifest.yaml asks for (tests/test_doctor.py keeps the two the same).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "channels:history",
    "groups:history",
    "files:read",
    "usergroups:read",
    "users:read",
    "im:write",
    "im:history",
)
ADMIN_SCOPES = ("chat:write", "files:write")  # PRODUCT §10: files.delete and chat.delete
TIMEOUT_SECONDS = 10
REINSTALL = (
    "add it under OAuth & Permissions (or recreate the app from manifest.yaml) and reinstall"
)


def slack_checks(env: DoctorSettings) -> list[Check]:
    token = env.slack_bot_token
    if token is None:
        return [
            fail("Slack bot token", "SLACK_BOT_TOKEN is not set: the Bot User OAuth Token (xoxb-)"),
            skip("Slack scopes", "needs the bot token"),
            skip("alerts channel", "needs the bot token"),
            *_app_token(env),
            *_admin_token(env, None),
        ]
    client = _client(token.get_secret_value(), env.slack_api_url)
    try:
        identity = client.auth_test()
    except (SlackClientError, OSError) as exc:
        return [
            fail("Slack bot token", f"auth.test failed ({_reason(exc)}): {_token_fix(exc)}"),
            skip("Slack scopes", "needs a working bot token"),
            skip("alerts channel", "needs a working bot token"),
            *_app_token(env),
            *_admin_token(env, None),
        ]
    who = f"bot <@{identity.get('user_id')}> in {identity.get('team') or identity.get('team_id')}"
    return [
        ok("Slack bot token", who),
        _scopes(identity),
        _alerts_channel(client, env.alert_channel),
        *_app_token(env),
        *_admin_token(env, client),
    ]


def _scopes(identity: SlackResponse) -> Check:
    granted = _granted(identity)
    if granted is None:
        return fail("Slack scopes", "Slack did not say which scopes the token has")
    missing = [scope for scope in BOT_SCOPES if scope not in granted]
    if missing:
        return fail("Slack scopes", f"the bot token lacks {', '.join(missing)}: {REINSTALL}")
    return ok("Slack scopes", f"all {len(BOT_SCOPES)} scopes of manifest.yaml")


def _alerts_channel(client: WebClient, channel: str | None) -> Check:
    name = "alerts channel"
    if not channel:
        return fail(name, "MODBOT_ALERT_CHANNEL is not set: the alerts channel's id (C…)")
    try:
        info = client.conversations_info(channel=channel)["channel"]
    except (SlackClientError, OSError) as exc:
        return fail(name, f"conversations.info on {channel} failed ({_reason(exc)}): check the id")
    label = f"#{info.get('name') or channel} ({channel})"
    if info.get("is_archived"):
        return fail(name, f"{label} is archived: pick another channel")
    if not info.get("is_member"):
        return fail(name, f"the bot is not a member of {label}: /invite @modbot in that channel")
    return ok(name, f"the bot is a member of {label}")


def _app_token(env: DoctorSettings) -> list[Check]:
    name = "app-level token"
    if env.slack_app_token is None:
        return [skip(name, "SLACK_APP_TOKEN is not set (HTTP mode)")]
    client = _client(env.slack_app_token.get_secret_value(), env.slack_api_url)
    try:
        client.apps_connections_open(app_token=env.slack_app_token.get_secret_value())
    except (SlackClientError, OSError) as exc:
        return [
            fail(
                name,
                f"apps.connections.open failed ({_reason(exc)}): make an app-level token with "
                "connections:write under Basic Information and enable Socket Mode",
            )
        ]
    return [ok(name, "Socket Mode connections can be opened")]


def _admin_token(env: DoctorSettings, bot: WebClient | None) -> list[Check]:  # noqa: PLR0911 - one return per diagnosis
    name = "admin token"
    token = env.slack_admin_token
    if token is None:
        return [skip(name, "SLACK_ADMIN_TOKEN is not set (removing images is off)")]
    client = _client(token.get_secret_value(), env.slack_api_url)
    try:
        identity = client.auth_test()
    except (SlackClientError, OSError) as exc:
        return [fail(name, f"auth.test failed ({_reason(exc)}): {_token_fix(exc, 'xoxp-')}")]
    user = str(identity.get("user_id") or "")
    granted = _granted(identity) or frozenset()
    missing = [scope for scope in ADMIN_SCOPES if scope not in granted]
    if missing:
        return [
            fail(
                name,
                f"the token of <@{user}> lacks the user scopes {', '.join(missing)}: add them "
                "under User Token Scopes and reinstall",
            )
        ]
    if bot is None:
        return [skip(name, f"token of <@{user}>; its role needs a working bot token to check")]
    try:
        profile = bot.users_info(user=user)["user"]
    except (SlackClientError, OSError) as exc:
        return [fail(name, f"users.info on <@{user}> failed ({_reason(exc)})")]
    if not (profile.get("is_admin") or profile.get("is_owner")):
        return [
            fail(
                name,
                f"<@{user}> is not a workspace Owner or Admin: Slack lets only them delete "
                "other people's files and messages; use such a person's token",
            )
        ]
    return [
        ok(name, f"token of <@{user}>, a workspace Owner or Admin, with chat:write and files:write")
    ]


def _client(token: str, base_url: str) -> WebClient:
    return WebClient(token=token, base_url=base_url, timeout=TIMEOUT_SECONDS)


def _granted(response: SlackResponse) -> frozenset[str] | None:
    header = next(
        (value for key, value in response.headers.items() if key.lower() == "x-oauth-scopes"), None
    )
    if header is None:
        return None
    text = header if isinstance(header, str) else ",".join(header)
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def _reason(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return str(exc) or type(exc).__name__


def _token_fix(exc: Exception, kind: str = "xoxb-") -> str:
    if isinstance(exc, SlackApiError):
        return f"Slack refused the token: copy the {kind} token again from the app's settings"
    return "Slack could not be reached: check the network and SLACK_API_URL"
