"""The start check of AWS settings: boto3's chain read locally, never over the network."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.aws_credentials import NO_CREDENTIALS, NO_REGION, aws_problems


@pytest.fixture(autouse=True)
def no_aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer's ~/.aws, and any connection attempt is a test failure."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network call during the AWS check: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")


NOT_EC2 = ((Path("/nonexistent/sys_vendor"), "Amazon EC2"),)


def test_region_and_keys_in_the_environment_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_REGION given, keys in the environment: nothing to report."""
    _keys(monkeypatch)
    assert aws_problems("eu-west-1", ec2_markers=NOT_EC2) == []


def test_region_and_credentials_from_a_profile_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A named profile's region and keys count, as boto3 would use them."""
    (tmp_path / "config").write_text("[profile mod]\nregion = eu-west-1\n")
    (tmp_path / "credentials").write_text(
        "[mod]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = example-secret\n"
    )
    monkeypatch.setenv("AWS_PROFILE", "mod")
    assert aws_problems(None, ec2_markers=NOT_EC2) == []


def test_nothing_found_gives_one_line_each() -> None:
    """No region and no credentials: the two lines, AWS_REGION named in the first."""
    assert aws_problems(None, ec2_markers=NOT_EC2) == [NO_REGION, NO_CREDENTIALS]


def test_a_broken_chain_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Half a key pair, or a profile that does not exist: one line saying what boto3 says."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    [problem] = aws_problems("eu-west-1", ec2_markers=NOT_EC2)
    assert problem.startswith("AWS credentials: Partial credentials")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.setenv("AWS_PROFILE", "nope")
    [problem] = aws_problems("eu-west-1", ec2_markers=NOT_EC2)
    assert problem.startswith("AWS_PROFILE: ")
    assert "nope" in problem


def test_task_role_counts_without_calling_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ECS/EKS container endpoint is configured credentials; it is not called at start."""
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc")
    assert aws_problems("eu-west-1", ec2_markers=NOT_EC2) == []


def test_instance_role_counts_only_on_ec2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The metadata service is assumed only where local files say EC2, and never called;
    AWS_EC2_METADATA_DISABLED=true turns it off, =false vouches for it."""
    vendor = tmp_path / "sys_vendor"
    vendor.write_text("Amazon EC2\n")
    on_ec2 = ((vendor, "Amazon EC2"),)
    assert aws_problems("eu-west-1", ec2_markers=on_ec2) == []
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert aws_problems("eu-west-1", ec2_markers=on_ec2) == [NO_CREDENTIALS]
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "false")
    assert aws_problems("eu-west-1", ec2_markers=NOT_EC2) == []
