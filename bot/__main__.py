"""`modbot` command line: `serve`, `policy check FILE`, `policy a2i-conditions [FILE]`,
`a2i setup`, `audit export`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

from bot import a2i_setup, a2i_setup_aws, audit_export, logs, ops_settings
from bot.app import serve_http, serve_socket
from bot.errors import ConfigError
from bot.policy import a2i_activation_conditions, check_policy_file, load_policy
from bot.settings import A2ITrigger, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modbot", description="Image moderation for Slack.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the bot")
    transport = serve.add_mutually_exclusive_group()
    transport.add_argument("--http", action="store_true", help="force HTTP mode")
    transport.add_argument("--socket", action="store_true", help="force Socket Mode")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default $PORT or 3000)")

    policy = commands.add_parser("policy", help="work with policy files")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_commands.add_parser("check", help="validate a policy file")
    check.add_argument("file")
    conditions = policy_commands.add_parser(
        "a2i-conditions", help="print A2I HumanLoopActivationConditions for the review band"
    )
    conditions.add_argument("file", nargs="?", default=None)

    a2i = commands.add_parser("a2i", help="Amazon A2I")
    a2i_commands = a2i.add_subparsers(dest="a2i_command", required=True)
    setup = a2i_commands.add_parser(
        "setup",
        help="create the A2I task UI, flow definition, bucket CORS rule, EventBridge rule and "
        "SQS queue (idempotent); prints the settings to use",
    )
    setup.add_argument("--role-arn", required=True, help="IAM role A2I assumes (S3 access)")
    setup.add_argument("--workteam-arn", required=True, help="the reviewers' work team")
    setup.add_argument("--bucket", required=True, help="bucket for image copies and output")
    setup.add_argument("--name", default="modbot", help="prefix of every name (default modbot)")
    setup.add_argument(
        "--wait-seconds",
        type=float,
        default=300.0,
        help="how long to wait for the flow definition to be Active (default 300)",
    )

    audit = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    export = audit_commands.add_parser(
        "export", help="write every audit record to standard output, oldest first"
    )
    export.add_argument("--since", default=None, metavar="YYYY-MM-DD", help="from this UTC day")
    export.add_argument("--format", choices=audit_export.FORMATS, default="csv")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "audit":
            return _audit_export(args)
        if args.command == "a2i":
            return _a2i_setup(args)
        if args.policy_command == "check":
            code, message = check_policy_file(args.file)
            print(message, file=sys.stdout if code == 0 else sys.stderr)
            return code
        policy = load_policy(args.file or os.environ.get("MODBOT_POLICY_FILE"))
        print(json.dumps(a2i_activation_conditions(policy), indent=2))
        return 0
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"modbot: {problem}", file=sys.stderr)
        return 2


def _a2i_setup(args: argparse.Namespace) -> int:
    """Progress on stderr, the settings on stdout (so `... >> .env` works)."""
    settings = ops_settings.load(ops_settings.A2ISetupSettings)
    flow = settings.a2i_trigger is A2ITrigger.FLOW
    request = a2i_setup.check_request(
        role_arn=args.role_arn,
        workteam_arn=args.workteam_arn,
        bucket=args.bucket,
        name=args.name,
        region=settings.region,
        trigger=settings.a2i_trigger.value,
        prefix=settings.s3_prefix,
        conditions=a2i_activation_conditions(load_policy(settings.policy_file)) if flow else None,
    )
    setup = a2i_setup_aws.A2ISetup(
        request,
        a2i_setup_aws.make_clients(request.region),
        say=lambda line: print(line, file=sys.stderr, flush=True),
        wait_seconds=args.wait_seconds,
    )
    try:
        result = setup.run()
    except a2i_setup_aws.SetupFailed as exc:
        print(f"modbot: a2i setup stopped: {exc.problem}", file=sys.stderr)
        if exc.changed:
            print(
                "modbot: created or changed before it stopped (kept; running the command "
                "again reuses them):",
                file=sys.stderr,
            )
            for item in exc.changed:
                print(f"modbot:   {item}", file=sys.stderr)
        else:
            print("modbot: nothing was created or changed.", file=sys.stderr)
        return 1
    for line in a2i_setup.settings_lines(request, result.flow_arn, result.queue_url):
        print(line)
    return 0


def _audit_export(args: argparse.Namespace) -> int:
    try:
        since = audit_export.parse_since(args.since) if args.since is not None else None
    except ValueError as exc:
        print(f"modbot: {exc}", file=sys.stderr)
        return 2
    settings = ops_settings.load(ops_settings.DatabaseSettings)
    try:
        engine = audit_export.export_engine(settings.database_url)
        try:
            audit_export.export(engine, sys.stdout, since=since, fmt=args.format)
        finally:
            engine.dispose()
        sys.stdout.flush()
    except audit_export.ExportFailed as exc:
        print(f"modbot: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `modbot audit export | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    socket_mode = args.socket or (settings.slack_app_token is not None and not args.http)
    if socket_mode and settings.slack_app_token is None:
        raise ConfigError(["SLACK_APP_TOKEN: required for Socket Mode (--socket)"])
    if not socket_mode and settings.slack_signing_secret is None:
        raise ConfigError(["SLACK_SIGNING_SECRET: required for HTTP mode"])
    secrets = [settings.slack_bot_token.get_secret_value()]
    secrets += [
        s.get_secret_value() for s in (settings.slack_signing_secret, settings.slack_app_token) if s
    ]
    policy = load_policy(settings.policy_file)
    logs.configure(secrets=secrets)
    if socket_mode:
        asyncio.run(serve_socket(settings, policy))
    else:
        serve_http(settings, policy, args.port or settings.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
