"""Settings: PRODUCT §7 names and defaults, and one clear line per problem."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest

from bot.adapters.aws_credentials import NO_CREDENTIALS, NO_REGION
from bot.core.errors import ConfigError
from bot.settings import ReviewBackendName, load_settings


def _set(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_defaults_match_the_product_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the two required variables set: every other setting has its documented default."""
    _set(monkeypatch, SLACK_BOT_TOKEN="xoxb-1-abc", MODBOT_ALERT_CHANNEL="C0ALERTS")
    settings = load_settings()
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.review_backend is ReviewBackendName.SLACK
    assert settings.detector == "rekognition"
    assert settings.review_quorum == 1
    assert settings.review_remind_minutes == 60
    assert settings.a2i_trigger == "policy"
    assert settings.s3_prefix == "modbot/"
    assert settings.a2i_poll_seconds == 60
    assert settings.rekognition_tps == 5
    assert settings.max_download_bytes == 26214400
    assert settings.database_url == "sqlite:///modbot.db"
    assert settings.port == 3000
    assert settings.watch_channels == ()


def test_lists_and_networks_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comma-separated channel ids, reviewers and CIDRs become tuples."""
    _set(
        monkeypatch,
        SLACK_BOT_TOKEN="xoxb-1",
        MODBOT_ALERT_CHANNEL="C1",
        MODBOT_WATCH_CHANNELS="C1, C2",
        MODBOT_REVIEWERS="U1,S2",
        MODBOT_ALLOW_PRIVATE_NETWORKS="127.0.0.2/32,fd00::/8",
        AWS_DEFAULT_REGION="eu-west-1",
    )
    settings = load_settings()
    assert settings.watch_channels == ("C1", "C2")
    assert settings.reviewers == ("U1", "S2")
    assert settings.allow_private_networks == (
        ipaddress.ip_network("127.0.0.2/32"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert settings.region == "eu-west-1"  # AWS_REGION unset: falls back to AWS_DEFAULT_REGION


def test_every_problem_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad values are reported together, each naming its environment variable."""
    _set(
        monkeypatch,
        SLACK_BOT_TOKEN="not-a-token",
        MODBOT_REVIEW_QUORUM="many",
        MODBOT_ALLOW_PRIVATE_NETWORKS="10.0.0.0/33",
        MODBOT_REKOGNITION_TPS="0",
        MODBOT_DETECTOR="clip",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings()
    problems = caught.value.problems
    assert "MODBOT_DETECTOR: Input should be 'rekognition' or 'nudenet'" in problems
    assert any(p.startswith("SLACK_BOT_TOKEN: must be a bot token") for p in problems)
    assert "MODBOT_ALERT_CHANNEL: required but not set" in problems
    for name in ("MODBOT_REVIEW_QUORUM", "MODBOT_ALLOW_PRIVATE_NETWORKS", "MODBOT_REKOGNITION_TPS"):
        assert any(p.startswith(f"{name}:") for p in problems), name
    assert all("\n" not in p for p in problems)


def test_a2i_backend_needs_its_flow_and_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Choosing the a2i backend without its flow definition and bucket stops the start."""
    _set(
        monkeypatch,
        SLACK_BOT_TOKEN="xoxb-1",
        MODBOT_ALERT_CHANNEL="C1",
        MODBOT_REVIEW_BACKEND="a2i",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == [
        "MODBOT_REVIEW_BACKEND=a2i needs MODBOT_A2I_FLOW_DEFINITION_ARN and MODBOT_S3_BUCKET"
    ]


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`modbot serve` as a newcomer runs it: only `env`, no AWS files, no metadata service."""
    base = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


SLACK = {
    "SLACK_BOT_TOKEN": "xoxb-1-abc",
    "SLACK_SIGNING_SECRET": "secret-123456",
    "MODBOT_ALERT_CHANNEL": "C1",
}
AWS_KEYS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example-secret"}


def test_serve_without_settings_prints_missing_variables_and_fails(tmp_path: Path) -> None:
    """`modbot serve` with nothing set: exit 2, one line per missing variable, no traceback."""
    done = _serve(tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "modbot: SLACK_BOT_TOKEN: required but not set",
        "modbot: MODBOT_ALERT_CHANNEL: required but not set",
        f"modbot: {NO_REGION}",
        f"modbot: {NO_CREDENTIALS}",
    ]
    assert "Traceback" not in done.stderr


def test_decode_memory_budget_defaults_to_256_mib_and_refuses_nonsense(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MODBOT_DECODE_MEMORY_MB: 256 MiB unless set; a value too small to decode anything, or
    not a number, is one line naming the variable."""
    _set(monkeypatch, SLACK_BOT_TOKEN="xoxb-1-abc", MODBOT_ALERT_CHANNEL="C0ALERTS")
    assert load_settings().decode_memory_bytes == 256 * 1024 * 1024
    for bad in ("8", "lots"):
        monkeypatch.setenv("MODBOT_DECODE_MEMORY_MB", bad)
        with pytest.raises(ConfigError) as caught:
            load_settings()
        [problem] = caught.value.problems
        assert problem.startswith("MODBOT_DECODE_MEMORY_MB: ")


def test_link_timeout_and_note_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """MODBOT_LINK_TIMEOUT_SECONDS (15) and MODBOT_NOTE_INTERVAL_SECONDS (5): defaults, values,
    and one line naming the variable when out of range."""
    _set(monkeypatch, SLACK_BOT_TOKEN="xoxb-1-abc", MODBOT_ALERT_CHANNEL="C0ALERTS")
    settings = load_settings()
    assert (settings.link_timeout_seconds, settings.note_interval_seconds) == (15, 5)
    _set(monkeypatch, MODBOT_LINK_TIMEOUT_SECONDS="2.5", MODBOT_NOTE_INTERVAL_SECONDS="0")
    settings = load_settings()
    assert (settings.link_timeout_seconds, settings.note_interval_seconds) == (2.5, 0)
    _set(monkeypatch, MODBOT_LINK_TIMEOUT_SECONDS="0")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    [line] = refused.value.problems
    assert line.startswith("MODBOT_LINK_TIMEOUT_SECONDS:")


def test_serve_without_aws_region_names_it_in_one_line(tmp_path: Path) -> None:
    """Slack settings and AWS keys but no region: one line naming AWS_REGION, exit 2."""
    done = _serve(tmp_path, **SLACK, **AWS_KEYS)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"modbot: {NO_REGION}"]
    assert NO_REGION.startswith("AWS_REGION: ")


def test_serve_without_aws_credentials_says_so_in_one_line(tmp_path: Path) -> None:
    """A region but nothing in boto3's credential chain: one line, exit 2, no traceback."""
    done = _serve(tmp_path, **SLACK, AWS_REGION="eu-west-1")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"modbot: {NO_CREDENTIALS}"]


def test_serve_without_region_or_credentials_gives_two_lines(tmp_path: Path) -> None:
    """Both missing (the newcomer's first run): two lines, no NoRegionError traceback."""
    done = _serve(tmp_path, **SLACK, SLACK_APP_TOKEN="xapp-1-abc")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"modbot: {NO_REGION}", f"modbot: {NO_CREDENTIALS}"]
    assert "Traceback" not in done.stderr
    assert "NoRegionError" not in done.stderr


def test_retention_days_default_to_90_and_refuse_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    """MODBOT_RETENTION_DAYS (PRODUCT §9): 90 unless set; zero or a non-number is one line."""
    _set(monkeypatch, SLACK_BOT_TOKEN="xoxb-1-abc", MODBOT_ALERT_CHANNEL="C0ALERTS")
    assert load_settings().retention_days == 90
    _set(monkeypatch, MODBOT_RETENTION_DAYS="30")
    assert load_settings().retention_days == 30
    for bad in ("0", "forever"):
        monkeypatch.setenv("MODBOT_RETENTION_DAYS", bad)
        with pytest.raises(ConfigError) as refused:
            load_settings()
        [line] = refused.value.problems
        assert line.startswith("MODBOT_RETENTION_DAYS: ")
