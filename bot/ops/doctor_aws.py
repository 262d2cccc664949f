"""`modbot doctor`: AWS credentials and region, Rekognition permission, and the A2I parts (flow
definition, bucket and its CORS rule, events queue). Reading calls only, and nothing billed."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bot.adapters.aws_credentials import aws_problems
from bot.core.errors import ConfigError
from bot.core.policy import a2i_activation_conditions, load_policy
from bot.ops.a2i_setup import cors_allows_worker_page
from bot.ops.doctor_checks import Check, DoctorSettings, fail, ok, skip

REQUEST_SOURCE = "AWS/Rekognition/DetectModerationLabels/Image/V3"
# Not JPEG or PNG: Rekognition answers InvalidImageFormatException, which it can only say once
# the caller is authenticated and authorised (AccessDeniedException comes first), and analyses
# no image, so no image is billed.
NOT_AN_IMAGE = b"modbot doctor: permission check, not an image"
ALLOWED_ANSWERS = frozenset({"InvalidImageFormatException", "InvalidParameterException"})
DENIED = frozenset({"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"})
SETUP = "run `modbot a2i setup` (README, Operating modbot)"


def aws_checks(env: DoctorSettings) -> list[Check]:
    if not (env.uses_rekognition or env.uses_a2i):
        return [skip("AWS", "not used (MODBOT_DETECTOR=nudenet, no A2I)")]
    problems = aws_problems(env.region)
    if problems:
        return [fail("AWS", problem) for problem in problems] + [
            skip(name, "needs AWS credentials and a region")
            for name in ("Rekognition", "A2I flow definition", "S3 bucket", "A2I events queue")
        ]
    session = boto3.session.Session()
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=15)

    def client(service: str) -> Any:
        return session.client(service, region_name=env.region, config=config)  # type: ignore[call-overload]

    identity = _identity(client("sts"), env.region)
    checks = [identity]
    if identity.status == "FAIL":
        return [*checks, skip("Rekognition", "needs working AWS credentials")]
    checks.append(
        _rekognition(client("rekognition"))
        if env.uses_rekognition
        else skip("Rekognition", "not used (MODBOT_DETECTOR=nudenet)")
    )
    if env.uses_a2i or env.a2i_flow_definition_arn:
        checks.append(_flow_definition(client("sagemaker"), env))
    else:
        checks.append(skip("A2I flow definition", "MODBOT_REVIEW_BACKEND is not a2i"))
    if env.uses_a2i or env.s3_bucket:
        checks += _bucket(client("s3"), env.s3_bucket)
    if env.a2i_events_queue_url:
        checks.append(_queue(client("sqs"), env.a2i_events_queue_url))
    elif env.uses_a2i:
        checks.append(
            skip("A2I events queue", "MODBOT_A2I_EVENTS_QUEUE_URL is not set: polling only")
        )
    return checks


def _identity(sts: Any, region: str | None) -> Check:
    name = "AWS credentials"
    try:
        who = sts.get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        return fail(name, f"STS GetCallerIdentity failed ({_reason(exc)}): check the credentials")
    return ok(name, f"account {who.get('Account')} as {who.get('Arn')}, region {region}")


def _rekognition(rekognition: Any) -> Check:
    name = "Rekognition"
    try:
        rekognition.detect_moderation_labels(Image={"Bytes": NOT_AN_IMAGE})
    except ClientError as exc:
        code = _code(exc)
        if code in ALLOWED_ANSWERS:
            return ok(name, "DetectModerationLabels allowed (asked with a non-image: not billed)")
        if code in DENIED:
            return fail(
                name,
                f"{code}: allow rekognition:DetectModerationLabels to these credentials "
                "(IAM policy)",
            )
        return fail(name, f"DetectModerationLabels failed ({_reason(exc)})")
    except BotoCoreError as exc:
        return fail(name, f"Rekognition unreachable ({_reason(exc)})")
    return ok(name, "DetectModerationLabels allowed")


def _flow_definition(sagemaker: Any, env: DoctorSettings) -> Check:  # noqa: PLR0911 - one return per diagnosis
    name = "A2I flow definition"
    arn = env.a2i_flow_definition_arn
    if not arn:
        return fail(name, f"MODBOT_A2I_FLOW_DEFINITION_ARN is not set: {SETUP}")
    flow_name = arn.rsplit("flow-definition/", 1)[-1] if "flow-definition/" in arn else ""
    if not flow_name:
        return fail(name, f"{arn} is not a flow definition ARN (…:flow-definition/NAME)")
    try:
        flow = sagemaker.describe_flow_definition(FlowDefinitionName=flow_name)
    except ClientError as exc:
        if _code(exc) in ("ResourceNotFound", "ResourceNotFoundException"):
            return fail(name, f"no flow definition {flow_name} in {env.region}: {SETUP}")
        return fail(name, f"DescribeFlowDefinition failed ({_reason(exc)})")
    except BotoCoreError as exc:
        return fail(name, f"SageMaker unreachable ({_reason(exc)})")
    status = flow.get("FlowDefinitionStatus")
    if status != "Active":
        why = f" ({flow['FailureReason']})" if flow.get("FailureReason") else ""
        fix = (
            "wait a minute and check again"
            if status == "Initializing"
            else (f"delete it and {SETUP}")
        )
        return fail(name, f"{flow_name} is {status}{why}: {fix}")
    source = (flow.get("HumanLoopRequestSource") or {}).get("AwsManagedHumanLoopRequestSource")
    if source != REQUEST_SOURCE:
        return fail(name, f"{flow_name} is not for {REQUEST_SOURCE} (it is for {source}): {SETUP}")
    problem = _conditions_problem(flow, env)
    if problem:
        return fail(name, f"{flow_name}: {problem}")
    return ok(name, f"{flow_name} is Active, conditions fit MODBOT_A2I_TRIGGER={env.a2i_trigger}")


def _conditions_problem(flow: dict[str, Any], env: DoctorSettings) -> str | None:  # noqa: PLR0911 - one return per diagnosis
    text = (
        ((flow.get("HumanLoopActivationConfig") or {}).get("HumanLoopActivationConditionsConfig"))
        or {}
    ).get("HumanLoopActivationConditions")
    trigger = env.a2i_trigger.strip().lower()
    if trigger != "flow":
        if text:
            return (
                "it has activation conditions, but MODBOT_A2I_TRIGGER=policy needs none (A2I "
                "would skip loops the policy asks for): run `modbot a2i setup` with another "
                "--name, or set MODBOT_A2I_TRIGGER=flow"
            )
        return None
    if not text:
        return (
            "it has no activation conditions, but MODBOT_A2I_TRIGGER=flow needs them (every "
            "scan would open a loop): run `modbot a2i setup` with another --name, or set "
            "MODBOT_A2I_TRIGGER=policy"
        )
    try:
        wanted = a2i_activation_conditions(load_policy(env.policy_file))
    except ConfigError:
        return None  # the policy check reports it
    try:
        found = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return "its activation conditions are not JSON"
    if found != wanted:
        return (
            "its activation conditions differ from the policy's review band (`modbot policy "
            "a2i-conditions`): run `modbot a2i setup` with another --name"
        )
    return None


def _bucket(s3: Any, bucket: str | None) -> list[Check]:  # noqa: PLR0911 - one return per diagnosis
    name = "S3 bucket"
    if not bucket:
        return [fail(name, f"MODBOT_S3_BUCKET is not set: {SETUP}")]
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = _code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return [fail(name, f"bucket {bucket} does not exist: check MODBOT_S3_BUCKET")]
        if code in ("403", "AccessDenied", "Forbidden"):
            return [
                fail(
                    name,
                    f"no access to bucket {bucket}: allow s3:ListBucket, GetObject "
                    "and PutObject on it to these credentials",
                )
            ]
        return [fail(name, f"HeadBucket {bucket} failed ({_reason(exc)})")]
    except BotoCoreError as exc:
        return [fail(name, f"S3 unreachable ({_reason(exc)})")]
    try:
        rules = s3.get_bucket_cors(Bucket=bucket).get("CORSRules", [])
    except ClientError as exc:
        if _code(exc) != "NoSuchCORSConfiguration":
            return [
                ok(name, f"{bucket} reachable"),
                fail("S3 CORS", f"GetBucketCors failed ({_reason(exc)})"),
            ]
        rules = []
    except BotoCoreError as exc:
        return [ok(name, f"{bucket} reachable"), fail("S3 CORS", f"S3 unreachable ({exc})")]
    if not cors_allows_worker_page(rules):
        return [
            ok(name, f"{bucket} reachable"),
            fail(
                "S3 CORS",
                f"{bucket} has no CORS rule allowing GET from any origin, so the A2I worker "
                f"page cannot show the image: add AllowedMethods GET, AllowedOrigins * "
                f"(`modbot a2i setup` does)",
            ),
        ]
    return [ok(name, f"{bucket} reachable"), ok("S3 CORS", "GET from any origin is allowed")]


def _queue(sqs: Any, url: str) -> Check:
    name = "A2I events queue"
    try:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    except ClientError as exc:
        return fail(name, f"{url}: {_reason(exc)}: check MODBOT_A2I_EVENTS_QUEUE_URL ({SETUP})")
    except BotoCoreError as exc:
        return fail(name, f"SQS unreachable ({_reason(exc)})")
    return ok(name, f"{url} readable")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message') or 'no message'}"
    return str(exc) or type(exc).__name__
