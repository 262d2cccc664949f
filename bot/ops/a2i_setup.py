"""What `modbot a2i setup` wants to exist in AWS, as plain values, and how existing ones compare.

Pure: checked inputs, resource names, the CreateFlowDefinition request, the bucket's CORS rule,
the EventBridge pattern, the queue policy statement, and the comparisons that make the command
idempotent. `bot.ops.a2i_setup_aws` does the calls.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from bot.core.errors import ConfigError

REQUEST_SOURCE = "AWS/Rekognition/DetectModerationLabels/Image/V3"
EVENT_SOURCE = "aws.sagemaker"
EVENT_DETAIL_TYPE = "SageMaker A2I HumanLoop Status Change"

# The SageMaker model's patterns (aws.md §3.1); the workteam's groups pick out its region.
ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
WORKTEAM_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:([a-z0-9\-]*):[0-9]{12}:workteam/.+$")
NAME = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")  # SageMaker resource names
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")  # S3 bucket naming rules
MAX_NAME = 40  # leaves room for the longest suffix within SageMaker's 63 characters

# The rule AWS documents for the worker page to load the image (aws.md §3.3).
CORS_RULE: Final = {
    "AllowedHeaders": [],
    "AllowedMethods": ["GET"],
    "AllowedOrigins": ["*"],
    "ExposeHeaders": [],
}

TASK_TITLE = "Review an image posted in Slack"
TASK_DESCRIPTION = (
    "An automatic check was unsure about this image. Select every category the image "
    "really shows, or None of these apply."
)
TASK_KEYWORDS = ["image moderation", "content moderation"]
TASK_COUNT = 1  # one worker decides; the verdict rule also handles 2-3 (bot.core.verdict)
TASK_LIFETIME_SECONDS = 86_400  # an unanswered review expires (and says so) after a day
TASK_TIME_LIMIT_SECONDS = 3_600  # A2I's default time for one worker on one image


@dataclass(frozen=True)
class SetupRequest:
    """Checked input: arguments plus the settings the command reads."""

    role_arn: str
    workteam_arn: str
    bucket: str
    name: str
    region: str
    trigger: str  # "policy" | "flow"
    prefix: str  # MODBOT_S3_PREFIX
    conditions: dict[str, Any] | None  # the flow's activation conditions (flow trigger only)

    @property
    def task_ui_name(self) -> str:
        return f"{self.name}-review-ui"

    @property
    def flow_name(self) -> str:
        return f"{self.name}-review"

    @property
    def rule_name(self) -> str:
        return f"{self.name}-a2i-status"

    @property
    def queue_name(self) -> str:
        return f"{self.name}-a2i-events"

    @property
    def output_path(self) -> str:
        """A2I's output.json files go under MODBOT_S3_PREFIX, beside the image copies."""
        prefix = self.prefix.strip("/")
        return f"s3://{self.bucket}/{prefix + '/' if prefix else ''}a2i-output"


def check_request(
    *,
    role_arn: str,
    workteam_arn: str,
    bucket: str,
    name: str,
    region: str | None,
    trigger: str,
    prefix: str,
    conditions: dict[str, Any] | None,
) -> SetupRequest:
    """The request, or ConfigError with one line per bad input (nothing has been called yet)."""
    problems = []
    if not ROLE_ARN.match(role_arn):
        problems.append(
            f"--role-arn {role_arn!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
        )
    team = WORKTEAM_ARN.match(workteam_arn)
    if team is None:
        problems.append(
            f"--workteam-arn {workteam_arn!r} is not a SageMaker work team ARN "
            "(arn:aws:sagemaker:REGION:123456789012:workteam/private-crowd/NAME)"
        )
    if not BUCKET.match(bucket) or ".." in bucket:
        problems.append(f"--bucket {bucket!r} is not a valid S3 bucket name")
    if len(name) > MAX_NAME or not NAME.match(name):
        problems.append(
            f"--name {name!r}: lower-case letters, digits and single hyphens, "
            f"at most {MAX_NAME} characters"
        )
    if not region:
        problems.append("AWS_REGION (or AWS_DEFAULT_REGION): required, the region A2I runs in")
    elif team is not None and team.group(1) != region:
        problems.append(
            f"--workteam-arn is in {team.group(1) or 'no region'} but AWS_REGION is {region}: "
            "A2I needs the work team in the same region"
        )
    if problems:
        raise ConfigError(problems)
    assert region is not None
    return SetupRequest(role_arn, workteam_arn, bucket, name, region, trigger, prefix, conditions)


def flow_definition_request(request: SetupRequest, task_ui_arn: str) -> dict[str, Any]:
    """CreateFlowDefinition's parameters. No HumanLoopActivationConfig for the `policy`
    trigger: the bot then asks for a loop only when its policy says so, and every loop it asks
    for must open."""
    params: dict[str, Any] = {
        "FlowDefinitionName": request.flow_name,
        "HumanLoopRequestSource": {"AwsManagedHumanLoopRequestSource": REQUEST_SOURCE},
        "HumanLoopConfig": {
            "WorkteamArn": request.workteam_arn,
            "HumanTaskUiArn": task_ui_arn,
            "TaskTitle": TASK_TITLE,
            "TaskDescription": TASK_DESCRIPTION,
            "TaskCount": TASK_COUNT,
            "TaskAvailabilityLifetimeInSeconds": TASK_LIFETIME_SECONDS,
            "TaskTimeLimitInSeconds": TASK_TIME_LIMIT_SECONDS,
            "TaskKeywords": TASK_KEYWORDS,
        },
        "OutputConfig": {"S3OutputPath": request.output_path},
        "RoleArn": request.role_arn,
    }
    if request.conditions is not None:
        params["HumanLoopActivationConfig"] = {
            "HumanLoopActivationConditionsConfig": {
                "HumanLoopActivationConditions": json.dumps(
                    request.conditions, separators=(",", ":")
                )
            }
        }
    return params


def _conditions_of(flow: dict[str, Any]) -> Any:
    text = (
        (flow.get("HumanLoopActivationConfig") or {}).get("HumanLoopActivationConditionsConfig")
        or {}
    ).get("HumanLoopActivationConditions")
    if text is None:
        return None
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text


def flow_differences(existing: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What makes an existing flow definition (DescribeFlowDefinition) behave differently from
    the wanted one (CreateFlowDefinition parameters). Wording and time limits are left out:
    they do not change what the bot gets back."""
    differences = []
    if _conditions_of(existing) != _conditions_of(wanted):
        had = "none" if _conditions_of(existing) is None else "different ones"
        want = "none (policy trigger)" if _conditions_of(wanted) is None else "the policy's"
        differences.append(f"activation conditions: it has {had}, wanted {want}")
    pairs = [
        ("request source", ("HumanLoopRequestSource", "AwsManagedHumanLoopRequestSource")),
        ("work team", ("HumanLoopConfig", "WorkteamArn")),
        ("task UI", ("HumanLoopConfig", "HumanTaskUiArn")),
        ("workers per image", ("HumanLoopConfig", "TaskCount")),
        ("output path", ("OutputConfig", "S3OutputPath")),
        ("role", ("RoleArn",)),
    ]
    for label, path in pairs:
        have, want = _at(existing, path), _at(wanted, path)
        if have != want:
            differences.append(f"{label}: it has {have}, wanted {want}")
    return differences


def _at(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = document
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def cors_allows_worker_page(rules: list[dict[str, Any]]) -> bool:
    """Whether some rule already lets any origin GET objects (what the worker page needs)."""
    return any(
        "GET" in rule.get("AllowedMethods", []) and "*" in rule.get("AllowedOrigins", [])
        for rule in rules
    )


def event_pattern(flow_arn: str) -> dict[str, Any]:
    """Status changes of this flow's loops only, so other A2I users in the account stay out."""
    return {
        "source": [EVENT_SOURCE],
        "detail-type": [EVENT_DETAIL_TYPE],
        "detail": {"flowDefinitionArn": [flow_arn]},
    }


def queue_statement(queue_arn: str, rule_arn: str, name: str) -> dict[str, Any]:
    """Lets EventBridge, for this rule only, send to the queue (AWS advises no RoleArn)."""
    return {
        "Sid": f"{name}-a2i-status-events",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }


def policy_with(policy_text: str | None, statement: dict[str, Any]) -> dict[str, Any] | None:
    """The queue policy with `statement` in it, or None when it is already there as is.

    Other statements are kept; one with the same Sid is replaced."""
    policy: dict[str, Any] = (
        json.loads(policy_text) if policy_text else {"Version": "2012-10-17", "Statement": []}
    )
    found = policy.get("Statement") or []
    statements: list[dict[str, Any]] = [found] if isinstance(found, dict) else list(found)
    if statement in statements:
        return None
    others = [s for s in statements if s.get("Sid") != statement["Sid"]]
    return {**policy, "Statement": [*others, statement]}


def settings_lines(request: SetupRequest, flow_arn: str, queue_url: str) -> list[str]:
    """The settings that point the bot at what was set up, in .env form."""
    lines = [
        "MODBOT_REVIEW_BACKEND=a2i",
        f"MODBOT_A2I_TRIGGER={request.trigger}",
        f"MODBOT_A2I_FLOW_DEFINITION_ARN={flow_arn}",
        f"MODBOT_S3_BUCKET={request.bucket}",
        f"MODBOT_A2I_EVENTS_QUEUE_URL={queue_url}",
    ]
    if request.prefix != "modbot/":
        lines.append(f"MODBOT_S3_PREFIX={request.prefix}")
    return lines
