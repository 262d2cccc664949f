"""What boto3 will find for AWS, checked at start and locally: a missing region or credential is
one line naming it, not a NoRegionError traceback from deep inside the first client."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import botocore.session
from botocore.exceptions import BotoCoreError, ProfileNotFound

# Providers that fetch over HTTP when they apply. The start check never calls them: the
# container endpoint counts as configured when its variable is set, the instance role when
# the machine says (in local files) that it is an EC2 instance.
CONTAINER_PROVIDER = "container-role"
INSTANCE_PROVIDER = "iam-role"
CONTAINER_VARIABLES = (
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
# Nitro instances name their vendor in DMI; Xen-based ones have a hypervisor uuid "ec2...".
EC2_MARKERS = (
    (Path("/sys/devices/virtual/dmi/id/sys_vendor"), "Amazon EC2"),
    (Path("/sys/hypervisor/uuid"), "ec2"),
)

NO_REGION = (
    "AWS_REGION: required but not set (the region for Rekognition; "
    "AWS_DEFAULT_REGION or a region in the AWS profile also work)"
)
NO_CREDENTIALS = (
    "AWS credentials: none found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
    "AWS_PROFILE, or run with an instance or task role)"
)


def aws_problems(
    region: str | None, *, ec2_markers: Sequence[tuple[Path, str]] = EC2_MARKERS
) -> list[str]:
    """One line per AWS problem boto3 would otherwise raise later: no region, no credentials,
    or a chain it cannot read (a missing profile, half a key pair). No network call."""
    try:
        session = botocore.session.Session()
        region = region or session.get_config_variable("region")
    except ProfileNotFound as exc:
        return [f"AWS_PROFILE: {exc}"]
    except BotoCoreError as exc:  # an unreadable config file
        return [f"AWS_CONFIG_FILE: {exc}"]
    problems = [] if region else [NO_REGION]
    try:
        found = _local_credentials(session)
    except ProfileNotFound as exc:
        return [*problems, f"AWS_PROFILE: {exc}"]
    except BotoCoreError as exc:
        return [*problems, f"AWS credentials: {exc}"]
    if not (found or _container_role() or _instance_role(ec2_markers)):
        problems.append(NO_CREDENTIALS)
    return problems


def _local_credentials(session: botocore.session.Session) -> bool:
    """botocore's own chain minus its HTTP providers (assume-role, SSO and web identity are
    deferred: they return credentials that call out only when first used)."""
    resolver = session.get_component("credential_provider")
    resolver.remove(CONTAINER_PROVIDER)
    resolver.remove(INSTANCE_PROVIDER)
    return resolver.load_credentials() is not None


def _container_role() -> bool:
    return any(os.environ.get(name) for name in CONTAINER_VARIABLES)


def _instance_role(markers: Sequence[tuple[Path, str]]) -> bool:
    """True on an EC2 instance whose metadata service is not switched off, decided from local
    files so that a container or laptop without a metadata service never waits on one."""
    disabled = os.environ.get("AWS_EC2_METADATA_DISABLED", "").strip().lower()
    if disabled in ("true", "false"):  # an explicit "false" says the instance role is there
        return disabled == "false"
    for path, mark in markers:
        try:
            if path.read_text(errors="replace").strip().startswith(mark):
                return True
        except OSError:
            continue
    return False
