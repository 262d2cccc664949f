"""The pure side of `modbot a2i setup`: input checks, the wanted resources, the comparisons."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.core.errors import ConfigError
from bot.core.policy import DEFAULT_POLICY, MAX_CONDITIONS_CHARS, a2i_activation_conditions
from bot.ops.a2i_setup import (
    CORS_RULE,
    SetupRequest,
    check_request,
    cors_allows_worker_page,
    event_pattern,
    flow_definition_request,
    flow_differences,
    policy_with,
    queue_statement,
    settings_lines,
)
from bot.ops.a2i_template import task_template, template_sha256

ROLE = "arn:aws:iam::111122223333:role/service-role/modbot-a2i"
WORKTEAM = "arn:aws:sagemaker:us-east-1:111122223333:workteam/private-crowd/moderators"
UI = "arn:aws:sagemaker:us-east-1:111122223333:human-task-ui/modbot-review-ui"


def _request(**changes: Any) -> SetupRequest:
    values: dict[str, Any] = {
        "role_arn": ROLE,
        "workteam_arn": WORKTEAM,
        "bucket": "modbot-images",
        "name": "modbot",
        "region": "us-east-1",
        "trigger": "policy",
        "prefix": "modbot/",
        "conditions": None,
    }
    values.update(changes)
    return check_request(**values)


def test_a_good_request_names_every_resource_from_name() -> None:
    """--name prefixes every resource; output goes under MODBOT_S3_PREFIX."""
    request = _request()
    assert (request.task_ui_name, request.flow_name) == ("modbot-review-ui", "modbot-review")
    assert (request.rule_name, request.queue_name) == ("modbot-a2i-status", "modbot-a2i-events")
    assert request.output_path == "s3://modbot-images/modbot/a2i-output"
    assert _request(prefix="").output_path == "s3://modbot-images/a2i-output"
    assert _request(prefix="/a/b/").output_path == "s3://modbot-images/a/b/a2i-output"


def test_every_bad_input_is_reported_at_once() -> None:
    """All problems in one ConfigError, one line each, naming the option."""
    with pytest.raises(ConfigError) as caught:
        _request(
            role_arn="arn:aws:iam::111122223333:user/alice",
            workteam_arn="workteam/moderators",
            bucket="ab",
            name="a" * 41,
        )
    problems = caught.value.problems
    assert [p.split()[0] for p in problems] == [
        "--role-arn",
        "--workteam-arn",
        "--bucket",
        "--name",
    ]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"region": None}, "AWS_REGION"),
        ({"region": "eu-west-1"}, "same region"),
        ({"bucket": "bad..name"}, "--bucket"),
        ({"bucket": "UPPER"}, "--bucket"),
        ({"name": "a--"}, "--name"),
        ({"role_arn": "arn:aws:iam::12345:role/x"}, "--role-arn"),
    ],
)
def test_bad_input(changes: dict[str, Any], fragment: str) -> None:
    """Region missing or not the work team's, bad bucket/name/ARN shapes: refused up front."""
    with pytest.raises(ConfigError) as caught:
        _request(**changes)
    assert any(fragment in problem for problem in caught.value.problems)


def test_flow_request_has_conditions_only_for_the_flow_trigger() -> None:
    """policy trigger: no HumanLoopActivationConfig (every loop the bot asks for opens); flow
    trigger: the policy's conditions as compact JSON within A2I's limit."""
    plain = flow_definition_request(_request(), UI)
    assert "HumanLoopActivationConfig" not in plain
    assert plain["HumanLoopRequestSource"] == {
        "AwsManagedHumanLoopRequestSource": "AWS/Rekognition/DetectModerationLabels/Image/V3"
    }
    assert plain["HumanLoopConfig"]["HumanTaskUiArn"] == UI
    assert 1 <= plain["HumanLoopConfig"]["TaskCount"] <= 3
    conditions = a2i_activation_conditions(DEFAULT_POLICY)
    flow = flow_definition_request(_request(trigger="flow", conditions=conditions), UI)
    text = flow["HumanLoopActivationConfig"]["HumanLoopActivationConditionsConfig"][
        "HumanLoopActivationConditions"
    ]
    assert json.loads(text) == conditions
    assert len(text) <= MAX_CONDITIONS_CHARS


def test_flow_differences_ignore_wording_but_not_behaviour() -> None:
    """Same behaviour (only the title differs): no difference. Conditions, work team, role:
    each named."""
    wanted = flow_definition_request(_request(), UI)
    described = json.loads(json.dumps(wanted))
    described["HumanLoopConfig"]["TaskTitle"] = "An older title"
    described["FlowDefinitionStatus"] = "Active"
    assert flow_differences(described, wanted) == []
    described["HumanLoopActivationConfig"] = {
        "HumanLoopActivationConditionsConfig": {"HumanLoopActivationConditions": "{}"}
    }
    described["HumanLoopConfig"]["WorkteamArn"] = WORKTEAM.replace("moderators", "others")
    described["RoleArn"] = ROLE + "2"
    found = flow_differences(described, wanted)
    assert [line.split(":")[0] for line in found] == ["activation conditions", "work team", "role"]


def test_cors_rule_is_recognised_among_others() -> None:
    """An existing rule that allows GET from * is enough; a narrower one is not."""
    assert cors_allows_worker_page([CORS_RULE])
    assert cors_allows_worker_page(
        [{"AllowedMethods": ["PUT"], "AllowedOrigins": ["*"]}, {**CORS_RULE, "ID": "x"}]
    )
    assert not cors_allows_worker_page([])
    assert not cors_allows_worker_page(
        [{"AllowedMethods": ["GET"], "AllowedOrigins": ["https://example.com"]}]
    )


def test_queue_policy_keeps_other_statements_and_is_stable() -> None:
    """Our statement is added beside others, replaced by Sid when it changed, and a policy that
    already has it exactly is left alone (None)."""
    statement = queue_statement(
        "arn:aws:sqs:us-east-1:1:q", "arn:aws:events:us-east-1:1:rule/r", "m"
    )
    other = {"Sid": "someone", "Effect": "Allow", "Principal": "*", "Action": "sqs:*"}
    existing = json.dumps({"Version": "2012-10-17", "Statement": [other]})
    merged = policy_with(existing, statement)
    assert merged is not None
    assert merged["Statement"] == [other, statement]
    assert policy_with(json.dumps(merged), statement) is None
    moved = {**statement, "Condition": {"ArnEquals": {"aws:SourceArn": "old"}}}
    replaced = policy_with(json.dumps({"Statement": moved}), statement)
    assert replaced is not None
    assert replaced["Statement"] == [statement]
    fresh = policy_with(None, statement)
    assert fresh == {"Version": "2012-10-17", "Statement": [statement]}


def test_event_pattern_selects_this_flows_status_changes() -> None:
    """source aws.sagemaker, the A2I detail-type, and only this flow definition."""
    assert event_pattern("arn:fd") == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker A2I HumanLoop Status Change"],
        "detail": {"flowDefinitionArn": ["arn:fd"]},
    }


def test_settings_lines_are_env_lines() -> None:
    """The printed settings can be appended to .env as they are."""
    lines = settings_lines(_request(prefix="media/"), "arn:fd", "https://q")
    assert lines == [
        "MODBOT_REVIEW_BACKEND=a2i",
        "MODBOT_A2I_TRIGGER=policy",
        "MODBOT_A2I_FLOW_DEFINITION_ARN=arn:fd",
        "MODBOT_S3_BUCKET=modbot-images",
        "MODBOT_A2I_EVENTS_QUEUE_URL=https://q",
        "MODBOT_S3_PREFIX=media/",
    ]


def test_task_template_uses_the_rekognition_element_and_is_stable() -> None:
    """The worker page: AWS's moderation element fed the selected labels and the S3 image,
    a None button, every v7 top-level category explained, escaped HTML; same text every time."""
    template = task_template()
    assert "<crowd-rekognition-detect-moderation-labels" in template
    assert "task.input.selectedAiServiceResponse.moderationLabels" in template
    assert "task.input.aiServiceRequest.image.s3Object.bucket" in template
    assert "| grant_read_access" in template
    assert "exclusion-category" in template
    for category in ("Explicit", "Violence", "Hate Symbols", "Gambling"):
        assert f"<strong>{category}</strong>" in template
    assert "Blood &amp; Gore" in template
    assert "<short-instructions" in template
    assert "<full-instructions" in template
    assert len(template) <= 128_000
    assert template_sha256(template) == template_sha256(task_template())
