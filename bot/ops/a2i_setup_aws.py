"""`modbot a2i setup` against AWS: describe before create, one step per resource, and on any
failure the list of what this run created or changed, so nothing is left half-made unmentioned.

Running it again changes nothing: every step looks first and keeps what matches. A flow
definition cannot be changed in AWS, so one that exists with other settings is reported, never
replaced. boto3 blocks; this is a one-off command with nothing else to do meanwhile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bot.core.errors import ModbotError
from bot.ops.a2i_setup import (
    CORS_RULE,
    SetupRequest,
    cors_allows_worker_page,
    event_pattern,
    flow_definition_request,
    flow_differences,
    policy_with,
    queue_statement,
)
from bot.ops.a2i_template import task_template, template_sha256

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CORSRuleTypeDef
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sqs import SQSClient

MISSING_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
TARGET_ID = "modbot-a2i-events"


class SetupFailed(ModbotError):
    """A step failed or found something it must not change; `changed` is what this run made."""

    def __init__(self, problem: str, changed: list[str]) -> None:
        super().__init__(problem)
        self.problem = problem
        self.changed = list(changed)


@dataclass(frozen=True)
class Clients:
    sagemaker: SageMakerClient
    s3: S3Client
    sqs: SQSClient
    events: EventBridgeClient


def make_clients(region: str) -> Clients:
    """Made the standard way: the credential chain and AWS_ENDPOINT_URL_* apply unchanged."""
    session = boto3.session.Session()
    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30
    )
    return Clients(
        sagemaker=session.client("sagemaker", region_name=region, config=config),
        s3=session.client("s3", region_name=region, config=config),
        sqs=session.client("sqs", region_name=region, config=config),
        events=session.client("events", region_name=region, config=config),
    )


@dataclass(frozen=True)
class SetupResult:
    flow_arn: str
    queue_url: str


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message') or 'no message'}"
    return str(exc)


@dataclass
class A2ISetup:
    """The steps, in order: bucket check, task UI, flow definition (until Active), bucket CORS,
    queue, EventBridge rule, queue policy, rule target."""

    request: SetupRequest
    clients: Clients
    say: Callable[[str], None]
    wait_seconds: float = 300.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    changed: list[str] = field(default_factory=list)

    def run(self) -> SetupResult:
        self._check_bucket()
        ui_arn = self._task_ui()
        flow_arn = self._flow_definition(ui_arn)
        self._cors()
        queue_url, queue_arn = self._queue()
        rule_arn = self._rule(flow_arn)
        self._queue_policy(queue_url, queue_arn, rule_arn)
        self._target(queue_arn)
        return SetupResult(flow_arn, queue_url)

    @contextmanager
    def _step(self, doing: str) -> Iterator[None]:
        """AWS errors become SetupFailed naming the step and what was already changed."""
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise SetupFailed(f"{doing}: {_reason(exc)}", self.changed) from None

    def _fail(self, problem: str) -> SetupFailed:
        return SetupFailed(problem, self.changed)

    def _made(self, what: str, verb: str = "created") -> None:
        self.changed.append(what)
        self.say(f"{verb} {what}")

    # -- S3 ----------------------------------------------------------------------------------------

    def _check_bucket(self) -> None:
        bucket = self.request.bucket
        try:
            head = self.clients.s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket"):
                raise self._fail(f"bucket {bucket} does not exist (create it first)") from None
            if _code(exc) in ("403", "AccessDenied"):
                raise self._fail(f"bucket {bucket}: access denied to these credentials") from None
            raise self._fail(f"cannot reach bucket {bucket}: {_reason(exc)}") from None
        except BotoCoreError as exc:
            raise self._fail(f"cannot reach bucket {bucket}: {exc}") from None
        where = head.get("BucketRegion")
        if where and where != self.request.region:
            raise self._fail(
                f"bucket {bucket} is in {where} but A2I runs in {self.request.region}: "
                "it needs a bucket in the same region"
            )

    def _cors(self) -> None:
        bucket = self.request.bucket
        with self._step(f"reading the CORS rules of bucket {bucket}"):
            try:
                rules: list[Any] = list(self.clients.s3.get_bucket_cors(Bucket=bucket)["CORSRules"])
            except ClientError as exc:
                if _code(exc) != "NoSuchCORSConfiguration":
                    raise
                rules = []
        if cors_allows_worker_page(rules):
            self.say(f"kept the CORS rules of bucket {bucket} (they already allow GET from *)")
            return
        with self._step(f"adding the CORS rule to bucket {bucket}"):
            self.clients.s3.put_bucket_cors(
                Bucket=bucket,
                CORSConfiguration={"CORSRules": [*rules, cast("CORSRuleTypeDef", CORS_RULE)]},
            )
        self._made(f"CORS rule on bucket {bucket} (GET from any origin, for the worker page)")

    # -- SageMaker -------------------------------------------------------------------------------

    def _task_ui(self) -> str:
        name = self.request.task_ui_name
        template = task_template()
        sagemaker = self.clients.sagemaker
        with self._step(f"looking up human task UI {name}"):
            try:
                described = sagemaker.describe_human_task_ui(HumanTaskUiName=name)
            except ClientError as exc:
                if _code(exc) != "ResourceNotFound":
                    raise
            else:
                # The stored template's hash (AWS's exact hashing is UNCONFIRMED): a mismatch
                # is only a note; the old page still works.
                if described["UiTemplate"].get("ContentSha256") != template_sha256(template):
                    self.say(
                        f"kept human task UI {name}; its template differs from this version's "
                        "(delete it and the flow definition to take the new one)"
                    )
                else:
                    self.say(f"kept human task UI {name}")
                return described["HumanTaskUiArn"]
        with self._step(f"creating human task UI {name}"):
            arn = sagemaker.create_human_task_ui(
                HumanTaskUiName=name, UiTemplate={"Content": template}
            )["HumanTaskUiArn"]
        self._made(f"human task UI {name} ({arn})")
        return arn

    def _flow_definition(self, ui_arn: str) -> str:
        name = self.request.flow_name
        wanted = flow_definition_request(self.request, ui_arn)
        sagemaker = self.clients.sagemaker
        with self._step(f"looking up flow definition {name}"):
            try:
                described: Any = sagemaker.describe_flow_definition(FlowDefinitionName=name)
            except ClientError as exc:
                if _code(exc) != "ResourceNotFound":
                    raise
                described = None
        if described is not None:
            differences = flow_differences(described, wanted)
            if differences:
                raise self._fail(
                    f"flow definition {name} exists with different settings "
                    f"({'; '.join(differences)}). Flow definitions cannot be changed in AWS: "
                    f"delete it (aws sagemaker delete-flow-definition --flow-definition-name "
                    f"{name}) or choose another --name"
                )
            arn = str(described["FlowDefinitionArn"])
            self.say(f"kept flow definition {name} ({described['FlowDefinitionStatus']})")
        else:
            with self._step(f"creating flow definition {name}"):
                arn = sagemaker.create_flow_definition(**wanted)["FlowDefinitionArn"]
            self._made(f"flow definition {name} ({arn})")
        self._wait_active(name)
        return arn

    def _wait_active(self, name: str) -> None:
        deadline = self.clock() + self.wait_seconds
        delay = 0.25
        while True:
            with self._step(f"checking flow definition {name}"):
                described = self.clients.sagemaker.describe_flow_definition(FlowDefinitionName=name)
            status = described["FlowDefinitionStatus"]
            if status == "Active":
                return
            if status == "Failed":
                raise self._fail(
                    f"flow definition {name} is Failed: "
                    f"{described.get('FailureReason') or 'no reason given'}. Fix the cause "
                    "(often the role's permissions or trust policy), delete it (aws sagemaker "
                    f"delete-flow-definition --flow-definition-name {name}) and run this again"
                )
            remaining = deadline - self.clock()
            if status == "Deleting" or remaining <= 0:
                raise self._fail(
                    f"flow definition {name} is still {status} after {self.wait_seconds:g} s; "
                    "run this again later (it creates nothing twice)"
                )
            self.say(f"waiting for flow definition {name} to be Active (now {status})")
            self.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)

    # -- SQS and EventBridge ---------------------------------------------------------------------

    def _queue(self) -> tuple[str, str]:
        name = self.request.queue_name
        sqs = self.clients.sqs
        with self._step(f"looking up SQS queue {name}"):
            try:
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except ClientError as exc:
                if _code(exc) not in MISSING_QUEUE:
                    raise
                url = None
        if url is None:
            with self._step(f"creating SQS queue {name}"):
                url = sqs.create_queue(QueueName=name)["QueueUrl"]
            self._made(f"SQS queue {name} ({url})")
        else:
            self.say(f"kept SQS queue {name}")
        with self._step(f"reading the ARN of SQS queue {name}"):
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return url, attributes["Attributes"]["QueueArn"]

    def _rule(self, flow_arn: str) -> str:
        name = self.request.rule_name
        pattern = event_pattern(flow_arn)
        events = self.clients.events
        with self._step(f"looking up EventBridge rule {name}"):
            try:
                rule: Any = events.describe_rule(Name=name)
            except ClientError as exc:
                if _code(exc) != "ResourceNotFoundException":
                    raise
                rule = None
        if rule is not None and rule.get("State") == "ENABLED":
            try:
                same = json.loads(rule.get("EventPattern") or "null") == pattern
            except ValueError:
                same = False
            if same:
                self.say(f"kept EventBridge rule {name}")
                return str(rule["Arn"])
        with self._step(f"writing EventBridge rule {name}"):
            arn = events.put_rule(
                Name=name,
                EventPattern=json.dumps(pattern),
                State="ENABLED",
                Description="A2I human loop status changes for modbot",
            )["RuleArn"]
        self._made(f"EventBridge rule {name} ({arn})", "created" if rule is None else "updated")
        return arn

    def _queue_policy(self, queue_url: str, queue_arn: str, rule_arn: str) -> None:
        name = self.request.queue_name
        sqs = self.clients.sqs
        with self._step(f"reading the policy of SQS queue {name}"):
            attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy"])
        current = attributes.get("Attributes", {}).get("Policy")
        policy = policy_with(current, queue_statement(queue_arn, rule_arn, self.request.name))
        if policy is None:
            self.say(f"kept the policy of SQS queue {name}")
            return
        with self._step(f"writing the policy of SQS queue {name}"):
            sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
        self._made(
            f"policy of SQS queue {name} (lets rule {self.request.rule_name} send to it)",
            "created" if current is None else "updated",
        )

    def _target(self, queue_arn: str) -> None:
        rule = self.request.rule_name
        events = self.clients.events
        with self._step(f"reading the targets of EventBridge rule {rule}"):
            targets = events.list_targets_by_rule(Rule=rule)["Targets"]
        if any(target["Arn"] == queue_arn for target in targets):
            self.say(f"kept the SQS target of EventBridge rule {rule}")
            return
        with self._step(f"adding the SQS target to EventBridge rule {rule}"):
            answer = events.put_targets(Rule=rule, Targets=[{"Id": TARGET_ID, "Arn": queue_arn}])
        if answer.get("FailedEntryCount"):
            failed = answer.get("FailedEntries") or [{}]
            raise self._fail(
                f"adding the SQS target to EventBridge rule {rule}: "
                f"{failed[0].get('ErrorCode')}: {failed[0].get('ErrorMessage')}"
            )
        self._made(f"SQS target of EventBridge rule {rule}")
