"""`modbot a2i setup` against the emulator (SageMaker) and moto (S3, SQS, EventBridge): it
creates everything once, nothing the second time, and the real bot then reviews through it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.__main__ import main
from bot.core.policy import DEFAULT_POLICY, a2i_activation_conditions
from tests.fakes import slack_payloads as payloads
from tests.fakes.aws_recording_proxy import RecordingProxy
from tests.harness import GENERAL, POSTER, REVIEW_COLOR, Stack, http_bot, started_stack

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/modbot-a2i"
WORKTEAM = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:workteam/private-crowd/moderators"
MOTO_WRITES_FIRST_RUN = [
    "PutBucketCors",
    "CreateQueue",
    "PutRule",
    "SetQueueAttributes",
    "PutTargets",
]


@dataclass
class Setup:
    """The stand-ins, a bucket, and a way to run `modbot a2i setup` as an operator would."""

    stack: Stack
    proxy: RecordingProxy  # in front of moto: counts S3, SQS and EventBridge calls
    moto_url: str
    bucket: str
    name: str
    capsys: pytest.CaptureFixture[str]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    async def run(self, *extra: str, **overrides: str) -> tuple[int, str, str]:
        """`modbot a2i setup ...` in a thread (boto3 blocks; the emulator shares this loop)."""
        options = {
            "--role-arn": ROLE,
            "--workteam-arn": WORKTEAM,
            "--bucket": self.bucket,
            "--name": self.name,
        }
        options.update({f"--{key.replace('_', '-')}": value for key, value in overrides.items()})
        argv = ["a2i", "setup", *[part for pair in options.items() for part in pair], *extra]
        code = await asyncio.to_thread(main, argv)
        out, err = self.capsys.readouterr()
        return code, out, err

    def sagemaker_creates(self) -> list[str]:
        return [op for op in self.stack.aws.sagemaker.calls if op.startswith("Create")]


def _settings(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines())


@pytest.fixture
async def setup(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_url: str,
    capsys: pytest.CaptureFixture[str],
) -> AsyncIterator[Setup]:
    async with started_stack(tmp_path, monkeypatch, moto_url=moto_url) as stack:
        proxy = RecordingProxy(moto_url)
        await proxy.start()
        for service in ("S3", "SQS", "EVENTBRIDGE"):
            monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", proxy.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", stack.aws.url)
        suffix = uuid.uuid4().hex[:8]
        setup = Setup(stack, proxy, moto_url, f"modbot-setup-{suffix}", f"t{suffix}", capsys)
        setup.client("s3").create_bucket(Bucket=setup.bucket)
        try:
            yield setup
        finally:
            await proxy.close()


async def _wait_thread_reply(stack: Stack, alert: dict[str, Any], start: str) -> dict[str, Any]:
    await stack.slack.wait_for(
        lambda: any(m["text"].startswith(start) for m in stack.thread(alert)), timeout=10
    )
    return next(m for m in stack.thread(alert) if m["text"].startswith(start))


async def test_setup_creates_everything_once_and_the_bot_reviews_through_it(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First run: task UI, flow definition (Active), CORS, queue, rule, policy, target, and the
    settings. Second run: the same settings and not one create call. Then a borderline upload
    goes through a human loop on the created flow, and its status event reaches the bot
    through the created queue."""
    setup.stack.aws.sagemaker.activation_delay = 0.3  # the command has to wait for Active
    code, out, err = await setup.run()
    assert code == 0, err
    settings = _settings(out)
    flow_name = f"{setup.name}-review"
    flow_arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:flow-definition/{flow_name}"
    assert settings["MODBOT_A2I_FLOW_DEFINITION_ARN"] == flow_arn
    assert settings["MODBOT_S3_BUCKET"] == setup.bucket
    assert settings["MODBOT_A2I_EVENTS_QUEUE_URL"].endswith(f"/{setup.name}-a2i-events")
    assert settings["MODBOT_REVIEW_BACKEND"] == "a2i"
    assert settings["MODBOT_A2I_TRIGGER"] == "policy"
    assert "waiting for flow definition" in err
    assert setup.sagemaker_creates() == ["CreateHumanTaskUi", "CreateFlowDefinition"]
    assert setup.proxy.writes() == MOTO_WRITES_FIRST_RUN

    # What was made is what A2I needs.
    flow = setup.stack.aws.sagemaker.flows[flow_name]
    assert flow.status == "Active"
    assert "HumanLoopActivationConfig" not in flow.request  # policy trigger: no conditions
    assert flow.request["HumanLoopConfig"]["WorkteamArn"] == WORKTEAM
    assert flow.request["OutputConfig"]["S3OutputPath"] == f"s3://{setup.bucket}/modbot/a2i-output"
    ui = setup.stack.aws.sagemaker.task_uis[f"{setup.name}-review-ui"]
    assert "crowd-rekognition-detect-moderation-labels" in ui.content
    s3, sqs, events = setup.client("s3"), setup.client("sqs"), setup.client("events")
    [cors] = s3.get_bucket_cors(Bucket=setup.bucket)["CORSRules"]
    assert (cors["AllowedMethods"], cors["AllowedOrigins"]) == (["GET"], ["*"])
    queue_url = settings["MODBOT_A2I_EVENTS_QUEUE_URL"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    rule = events.describe_rule(Name=f"{setup.name}-a2i-status")
    [statement] = json.loads(attributes["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["Arn"]}}
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == attributes["QueueArn"]

    # Second run: same answer, nothing created or changed anywhere.
    setup.proxy.operations.clear()
    code, again, err = await setup.run()
    assert code == 0, err
    assert again == out
    assert setup.sagemaker_creates() == ["CreateHumanTaskUi", "CreateFlowDefinition"]
    assert setup.proxy.writes() == []
    assert "created" not in err

    # The bot, configured with the printed settings, reviews through what was created.
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    setup.stack.aws.set_events_queue(queue_url)
    async with http_bot(setup.stack) as bot:
        file = setup.stack.upload(REVIEW_COLOR)
        await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
        await bot.idle()
        [alert] = setup.stack.alerts()
        [loop_name] = setup.stack.aws.loops
        assert setup.stack.aws.loops[loop_name].flow_definition_arn == flow_arn
        await _wait_thread_reply(setup.stack, alert, ":mag: Human review started in Amazon A2I")
        output_uri = await setup.stack.aws.complete_loop(loop_name, [["Exposed Female Nipple"]])
        assert output_uri.startswith(f"s3://{setup.bucket}/modbot/a2i-output/{flow_name}/")
        verdict = await _wait_thread_reply(setup.stack, alert, "Verdict:")
        assert verdict["text"].startswith("Verdict: violation (Exposed Female Nipple)")
        rows = await bot.runtime.store.audit_log()
        assert [r["actor"] for r in rows if r["action"] == "verdict"] == ["a2i-sqs"]


async def test_the_rule_routes_this_flows_status_events_to_the_queue(setup: Setup) -> None:
    """moto's EventBridge, given the created rule, delivers an A2I status event of the created
    flow into the created queue, and not one of another flow."""
    code, out, _ = await setup.run()
    assert code == 0
    settings = _settings(out)
    events, sqs = setup.client("events"), setup.client("sqs")

    def status_event(flow_arn: str, loop: str) -> dict[str, Any]:
        detail = {
            "flowDefinitionArn": flow_arn,
            "humanLoopName": loop,
            "humanLoopStatus": "Completed",
        }
        return {
            "Source": "aws.sagemaker",
            "DetailType": "SageMaker A2I HumanLoop Status Change",
            "Detail": json.dumps(detail),
            "Resources": [f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:human-loop/{loop}"],
        }

    other_flow = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:flow-definition/someone-else"
    events.put_events(
        Entries=[
            status_event(other_flow, "not-ours"),
            status_event(settings["MODBOT_A2I_FLOW_DEFINITION_ARN"], "ours"),
        ]
    )
    received = sqs.receive_message(
        QueueUrl=settings["MODBOT_A2I_EVENTS_QUEUE_URL"], MaxNumberOfMessages=10, WaitTimeSeconds=2
    ).get("Messages", [])
    assert [json.loads(m["Body"])["detail"]["humanLoopName"] for m in received] == ["ours"]


async def test_flow_trigger_writes_the_policy_conditions_and_a_changed_trigger_is_reported(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MODBOT_A2I_TRIGGER=flow: the flow carries the policy's activation conditions. Run again
    under `policy` and the existing flow (immutable in AWS) is reported, not replaced."""
    monkeypatch.setenv("MODBOT_A2I_TRIGGER", "flow")
    code, out, err = await setup.run()
    assert code == 0, err
    assert "MODBOT_A2I_TRIGGER=flow" in out
    flow = setup.stack.aws.sagemaker.flows[f"{setup.name}-review"]
    conditions = flow.request["HumanLoopActivationConfig"]["HumanLoopActivationConditionsConfig"]
    assert json.loads(conditions["HumanLoopActivationConditions"]) == a2i_activation_conditions(
        DEFAULT_POLICY
    )

    monkeypatch.setenv("MODBOT_A2I_TRIGGER", "policy")
    setup.proxy.operations.clear()
    code, out, err = await setup.run()
    assert code == 1
    assert out == ""
    assert f"flow definition {setup.name}-review exists with different settings" in err
    assert "activation conditions" in err
    assert "delete-flow-definition" in err
    assert "nothing was created or changed" in err
    assert setup.sagemaker_creates() == ["CreateHumanTaskUi", "CreateFlowDefinition"]
    assert setup.proxy.writes() == []
    assert setup.stack.aws.sagemaker.flows[f"{setup.name}-review"] is flow


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("role_arn", "arn:aws:iam::111122223333:user/alice", "--role-arn"),
        ("role_arn", "modbot-a2i", "--role-arn"),
        ("workteam_arn", "arn:aws:sagemaker:us-east-1:1111:workteam/x", "--workteam-arn"),
        ("workteam_arn", WORKTEAM.replace("us-east-1", "eu-west-1"), "same region"),
        ("bucket", "Not_A_Bucket", "--bucket"),
        ("name", "Modbot", "--name"),
    ],
)
async def test_bad_input_exits_2_before_any_call(
    setup: Setup, option: str, value: str, says: str
) -> None:
    """An ARN that does not parse (or the wrong region, bucket or name): exit 2 with a line
    naming it, and not one AWS call made."""
    code, out, err = await setup.run(**{option: value})
    assert code == 2
    assert out == ""
    assert says in err
    assert err.startswith("modbot: ")
    assert setup.stack.aws.sagemaker.calls == []
    assert setup.proxy.operations == []


async def test_missing_region_exits_2(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS_REGION nor AWS_DEFAULT_REGION: exit 2 naming the setting, no call."""
    monkeypatch.delenv("AWS_REGION")
    code, _, err = await setup.run()
    assert code == 2
    assert "AWS_REGION" in err
    assert setup.proxy.operations == []


async def test_unreachable_bucket_creates_nothing_and_says_so(setup: Setup) -> None:
    """A bucket that does not exist is found before anything is created, and the error says so."""
    code, out, err = await setup.run(bucket=f"missing-{uuid.uuid4().hex[:8]}")
    assert code == 1
    assert out == ""
    assert "does not exist" in err
    assert "nothing was created or changed" in err
    assert setup.stack.aws.sagemaker.calls == []
    assert setup.proxy.writes() == []


async def test_a_refused_step_names_what_was_created_and_a_rerun_finishes(
    tmp_path: Path, setup: Setup
) -> None:
    """PutBucketCors refused (credentials without the permission): the error names the step and
    lists the task UI and flow definition already created; once allowed, the same command
    reuses them and creates only the rest."""
    setup.proxy.deny = frozenset({"PutBucketCors"})
    code, out, err = await setup.run()
    assert code == 1
    assert out == ""
    assert f"adding the CORS rule to bucket {setup.bucket}: AccessDenied" in err
    assert "created or changed before it stopped" in err
    assert f"human task UI {setup.name}-review-ui" in err
    assert f"flow definition {setup.name}-review" in err
    assert setup.proxy.writes() == ["PutBucketCors"]

    setup.proxy.deny = frozenset()
    setup.proxy.operations.clear()
    code, out, err = await setup.run()
    assert code == 0, err
    assert "MODBOT_A2I_FLOW_DEFINITION_ARN=" in out
    assert setup.sagemaker_creates() == ["CreateHumanTaskUi", "CreateFlowDefinition"]
    assert setup.proxy.writes() == MOTO_WRITES_FIRST_RUN


async def test_flow_that_never_becomes_active_is_a_bounded_wait(setup: Setup) -> None:
    """Still Initializing after --wait-seconds: exit 1 saying so (and what was created); a
    flow whose activation Failed: its reason, and how to start over."""
    setup.stack.aws.sagemaker.activation_delay = 60
    code, _, err = await setup.run("--wait-seconds", "0.5")
    assert code == 1
    assert "still Initializing after 0.5 s" in err
    assert f"flow definition {setup.name}-review (arn:" in err

    setup.stack.aws.sagemaker.activation_delay = 0
    setup.stack.aws.sagemaker.fail_next_activation("SageMaker cannot assume the role.")
    code, _, err = await setup.run(name=f"{setup.name}b")
    assert code == 1
    assert "is Failed: SageMaker cannot assume the role." in err
    assert "delete-flow-definition" in err
