"""The operator subcommands, `modbot a2i setup`, `modbot audit export`, `modbot doctor`,
`modbot scan` and `modbot bank export|import`: arguments and output.

Kept out of `bot.__main__`, which only registers them, so each command's wiring lives beside the
other operator code rather than in the one file every command touches.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from bot.core import bank_csv
from bot.core.policy import a2i_activation_conditions, load_policy
from bot.ops import a2i_setup, a2i_setup_aws, audit_export, doctor, scan_cli
from bot.ops import bank as bank_ops
from bot.ops import settings as ops_settings
from bot.settings import A2ITrigger

COMMANDS = frozenset({"a2i", "audit", "bank", "doctor", "scan"})


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `a2i setup`, `audit export` and `doctor` on modbot's subcommand parser."""
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
    scan_cli.add_command(commands)

    commands.add_parser(
        "doctor",
        help="check every configured part (settings, Slack, AWS, database, HMA), one line each; "
        "changes nothing",
    )

    bank = commands.add_parser("bank", help="the hash bank of human verdicts (PDQ hashes)")
    bank_commands = bank.add_subparsers(dest="bank_command", required=True)
    bank_export = bank_commands.add_parser(
        "export", help="write the bank as CSV (pdq,quality,verdict,labels,first_seen)"
    )
    bank_export.add_argument("file", nargs="?", default=None, help="default: standard output")
    bank_import = bank_commands.add_parser(
        "import", help="add a bank CSV's rows; a file with any bad row is refused whole"
    )
    bank_import.add_argument("file")


def run(args: argparse.Namespace) -> int:
    """Exit code of the chosen command; ConfigError (exit 2) is left to the caller."""
    if args.command == "doctor":
        return doctor.run(lambda line: print(line, flush=True))
    if args.command == "scan":
        return scan_cli.run(args)
    if args.command == "bank":
        return _bank(args)
    return _a2i_setup(args) if args.command == "a2i" else _audit_export(args)


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


def _bank(args: argparse.Namespace) -> int:
    settings = ops_settings.load(ops_settings.DatabaseSettings)
    try:
        if args.bank_command == "export":
            if args.file is None:
                asyncio.run(bank_ops.export_bank(settings.database_url, sys.stdout))
                sys.stdout.flush()
                return 0
            with open(args.file, "w", newline="", encoding="utf-8") as out:
                count = asyncio.run(bank_ops.export_bank(settings.database_url, out))
            print(f"wrote {count} rows to {args.file}", file=sys.stderr)
            return 0
        read, added = asyncio.run(bank_ops.import_bank(settings.database_url, Path(args.file)))
    except bank_csv.BadBankFile as exc:
        print(f"modbot: {args.file}: {exc}; nothing was imported", file=sys.stderr)
        return 1
    except bank_ops.BankCommandFailed as exc:
        print(f"modbot: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    print(f"imported {added} of {read} rows ({read - added} already in the bank)")
    return 0
