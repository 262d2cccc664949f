"""`modbot doctor`: every configured part checked, one line each, and a non-zero exit on any
failure. It reads and asks; it never changes anything or spends money."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic import ValidationError

from bot.ops.doctor_aws import aws_checks
from bot.ops.doctor_checks import Check, DoctorSettings, Status, fail
from bot.ops.doctor_database import database_checks, hma_checks
from bot.ops.doctor_settings import settings_checks
from bot.ops.doctor_slack import slack_checks

GROUPS: tuple[Callable[[DoctorSettings], list[Check]], ...] = (
    settings_checks,
    slack_checks,
    aws_checks,
    database_checks,
    hma_checks,
)


def checks() -> Iterator[Check]:
    """Each check as it is made (the network ones take a moment each)."""
    try:
        defaults: dict[str, Any] = {}  # everything from the environment and .env
        env = DoctorSettings(**defaults)
    except ValidationError as exc:  # only a .env file that cannot be read gets here
        yield fail("settings", f"cannot read the settings ({exc.error_count()} problems)")
        return
    for group in GROUPS:
        try:
            yield from group(env)
        except Exception as exc:  # a check's own bug must not hide the other checks
            yield fail(group.__name__.removesuffix("_checks"), f"check crashed: {exc!r}")


def run(say: Callable[[str], None]) -> int:
    """Print every line; 1 if any check failed, else 0."""
    failed = 0
    for check in checks():
        say(check.line)
        failed += check.status is Status.FAIL
    say(f"{failed} check{'s' if failed != 1 else ''} failed" if failed else "every check passed")
    return 1 if failed else 0
