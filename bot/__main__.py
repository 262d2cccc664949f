"""`modbot` command line: `serve`, `db upgrade`, `db revision MESSAGE`, `policy check FILE`,
`policy a2i-conditions [FILE]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from bot import logs
from bot.adapters.aws_credentials import aws_problems
from bot.adapters.database import migrate
from bot.adapters.database.scans import Store
from bot.adapters.detectors import detector_problems
from bot.app import serve_http, serve_socket
from bot.core.errors import ConfigError
from bot.core.policy import Policy, a2i_activation_conditions, check_policy_file, load_policy
from bot.ops import cli as ops_cli
from bot.settings import (
    DetectorName,
    Settings,
    load_database_settings,
    load_policy_file,
    load_region,
    load_settings,
    removal_problems,
)

T = TypeVar("T")
log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modbot", description="Image moderation for Slack.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the bot")
    transport = serve.add_mutually_exclusive_group()
    transport.add_argument("--http", action="store_true", help="force HTTP mode")
    transport.add_argument("--socket", action="store_true", help="force Socket Mode")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default $PORT or 3000)")

    db = commands.add_parser("db", help="the database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply pending migrations to DATABASE_URL")
    new = db_commands.add_parser(
        "revision",
        help="(developers) write the next migration from changes to the database schema "
        "(bot/adapters/database/schema.py)",
    )
    new.add_argument("message", help='what it changes, e.g. "add the leases table"')

    policy = commands.add_parser("policy", help="work with policy files")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_commands.add_parser("check", help="validate a policy file")
    check.add_argument("file")
    conditions = policy_commands.add_parser(
        "a2i-conditions", help="print A2I HumanLoopActivationConditions for the review band"
    )
    conditions.add_argument("file", nargs="?", default=None)
    ops_cli.add_commands(commands)  # a2i setup, audit export
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command in ops_cli.COMMANDS:
            return ops_cli.run(args)
        if args.command == "db":
            return asyncio.run(_db(args))
        if args.policy_command == "check":
            code, message = check_policy_file(args.file)
            print(message, file=sys.stdout if code == 0 else sys.stderr)
            return code
        policy = load_policy(args.file or load_policy_file())
        print(json.dumps(a2i_activation_conditions(policy), indent=2))
        return 0
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"modbot: {problem}", file=sys.stderr)
        return 2


async def _db(args: argparse.Namespace) -> int:
    if args.db_command == "revision":
        # Compared with a fresh database at head, so only bot/adapters/database/schema.py's changes
        # are written.
        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite+aiosqlite:///{Path(scratch) / 'scratch.db'}"
            path = await migrate.revision(url, args.message)
        print(f"wrote {path}")
        return 0
    store = Store.from_url(load_database_settings().sqlalchemy_url)
    try:
        await store.upgrade()
    finally:
        await store.close()
    print(f"database at revision {await migrate.current(store.engine.url)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings, policy, socket_mode = _checked(args)
    secrets = [settings.slack_bot_token.get_secret_value()]
    secrets += [
        s.get_secret_value()
        for s in (
            settings.slack_signing_secret,
            settings.slack_app_token,
            settings.slack_admin_token,
        )
        if s
    ]
    logs.configure(secrets=secrets, log_format=settings.log_format.value)
    try:
        if socket_mode:
            asyncio.run(serve_socket(settings, policy, args.port or settings.port))
        else:
            serve_http(settings, policy, args.port or settings.port)
    except ConfigError:
        raise
    except Exception:
        # Python's own report of an uncaught error would bypass the masking in the logs.
        log.exception("modbot stopped by an unexpected error")
        return 1
    return 0


def _checked(args: argparse.Namespace) -> tuple[Settings, Policy, bool]:
    """Settings, policy and transport (True: Socket Mode), or a ConfigError with every problem
    at once, AWS's included: a newcomer fixes them in one go, not one start at a time."""
    problems: list[str] = []
    settings = _collect(load_settings, problems)
    policy = None
    socket_mode = False
    if settings is not None:
        policy = _collect(lambda: load_policy(settings.policy_file), problems)
        socket_mode = args.socket or (settings.slack_app_token is not None and not args.http)
        if socket_mode and settings.slack_app_token is None:
            problems.append("SLACK_APP_TOKEN: required for Socket Mode (--socket)")
        if not socket_mode and settings.slack_signing_secret is None:
            problems.append("SLACK_SIGNING_SECRET: required for HTTP mode")
        if policy is not None:
            problems += removal_problems(settings, policy)
    if settings is not None:
        problems += detector_problems(settings.detector.value)
    if settings is None or settings.detector is DetectorName.REKOGNITION:
        problems += aws_problems(load_region())  # Rekognition, and A2I which needs it
    if problems or settings is None or policy is None:
        raise ConfigError(problems)
    return settings, policy, socket_mode


def _collect(load: Callable[[], T], problems: list[str]) -> T | None:
    try:
        return load()
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


if __name__ == "__main__":
    sys.exit(main())
