"""`modbot doctor`: the settings themselves and the policy file, as `modbot serve` reads them."""

from __future__ import annotations

from bot.core.errors import ConfigError
from bot.core.policy import load_policy
from bot.ops.doctor_checks import Check, DoctorSettings, fail, ok
from bot.settings import load_settings


def settings_checks(env: DoctorSettings) -> list[Check]:
    """One line per problem `modbot serve` would stop on, then the transport and the policy."""
    checks: list[Check] = []
    try:
        load_settings()
    except ConfigError as exc:
        checks += [fail("settings", problem) for problem in exc.problems]
    else:
        checks.append(ok("settings", "every setting is valid"))
    if env.slack_app_token is None and env.slack_signing_secret is None:
        checks.append(
            fail(
                "transport",
                "set SLACK_APP_TOKEN (Socket Mode, the manifest's default) or "
                "SLACK_SIGNING_SECRET (HTTP mode)",
            )
        )
    else:
        mode = "Socket Mode" if env.slack_app_token is not None else "HTTP mode"
        checks.append(ok("transport", mode))
    try:
        load_policy(env.policy_file)
    except ConfigError as exc:
        checks += [fail("policy", problem) for problem in exc.problems]
    else:
        checks.append(ok("policy", env.policy_file or "the built-in policy"))
    return checks
