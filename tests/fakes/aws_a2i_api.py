"""The A2I runtime's REST API (rest-json, aws.md §4) over the emulator's A2iRuntime state.

Each handler returns the success body or raises AwsError; aws.py turns that into the wire form.
Server-side checks botocore skips: the HumanLoopName pattern and length, the FlowDefinitionArn
pattern, InputContent's size and JSON-ness, the ContentClassifiers enum, MaxResults 1-100,
SortOrder, NextToken.

Choices on points aws.md leaves UNCONFIRMED:
- StartHumanLoop with an unregistered flow ARN is a ValidationException (the only 400 modeled
  for Start), and it always opens a loop, Rekognition-sourced flow or not; a reused name with
  different input is ConflictException (409);
- DeleteHumanLoop of a loop that is not Completed/Failed/Stopped is a ValidationException, and
  so is StopHumanLoop of a finished loop (stopping a Stopping loop is a no-op);
- ListHumanLoops sorts Ascending by default, MaxResults defaults to 100, the creation-time
  bounds are inclusive.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .aws_a2i import (
    FLOW_ARN,
    MAX_INPUT_CONTENT,
    TERMINAL,
    A2iRuntime,
    FlowDefinition,
    HumanLoop,
    check_content_classifiers,
    check_loop_name,
)
from .aws_wire import AwsError, iso_ms, validation_message


class A2iApi:
    """StartHumanLoop, DescribeHumanLoop, ListHumanLoops, StopHumanLoop, DeleteHumanLoop."""

    def __init__(self, runtime: A2iRuntime) -> None:
        self.runtime = runtime

    def _flow(self, arn: object, *, missing: str) -> FlowDefinition:
        where = "flowDefinitionArn"
        if not isinstance(arn, str) or not arn:
            raise AwsError(
                "ValidationException", validation_message(arn, where, "Member must not be null")
            )
        if len(arn) > 1024 or not FLOW_ARN.match(arn):
            raise AwsError(
                "ValidationException",
                validation_message(
                    arn,
                    where,
                    f"Member must satisfy regular expression pattern: {FLOW_ARN.pattern}",
                ),
            )
        flow = self.runtime.flows.get(arn)
        if flow is None:
            raise AwsError(missing, f"Flow definition {arn} does not exist.")
        return flow

    def _existing(self, name: object) -> HumanLoop:
        loop = self.runtime.loops.get(check_loop_name(name))
        if loop is None:
            raise AwsError("ResourceNotFoundException", f"Human loop {name} does not exist.")
        return loop

    async def api_start(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise AwsError("ValidationException", "Request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise AwsError("ValidationException", "Request body must be a JSON object.")
        name = check_loop_name(body.get("HumanLoopName"))
        flow = self._flow(body.get("FlowDefinitionArn"), missing="ValidationException")
        content = (body.get("HumanLoopInput") or {}).get("InputContent")
        where = "humanLoopInput.inputContent"
        if not isinstance(content, str) or len(content) > MAX_INPUT_CONTENT:
            raise AwsError(
                "ValidationException",
                validation_message(
                    "...",
                    where,
                    f"Member must have length less than or equal to {MAX_INPUT_CONTENT}",
                ),
            )
        try:
            parsed = json.loads(content)
        except ValueError as exc:
            raise AwsError("ValidationException", "InputContent must be a JSON document.") from exc
        check_content_classifiers(body.get("DataAttributes"), "dataAttributes.contentClassifiers")
        loop = self.runtime.open_loop(
            name,
            flow,
            hashlib.sha256(content.encode()).hexdigest(),
            parsed,
            conflict=AwsError(
                "ConflictException",
                "Your request has the same name as another active human loop "
                "but has different input data.",
            ),
            quota=AwsError("ServiceQuotaExceededException", "Too many active human loops."),
        )
        return {"HumanLoopArn": loop.arn}

    async def api_describe(self, request: web.Request) -> dict[str, Any]:
        return self._existing(request.match_info["name"]).describe()

    async def api_stop(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise AwsError("ValidationException", "Request body is not valid JSON.") from exc
        loop = self._existing(body.get("HumanLoopName") if isinstance(body, dict) else None)
        if loop.status == "InProgress":
            self.runtime.begin_stop(loop)
        elif loop.status in TERMINAL:
            raise AwsError(
                "ValidationException", f"Human loop {loop.name} is already {loop.status}."
            )
        return {}

    async def api_delete(self, request: web.Request) -> dict[str, Any]:
        loop = self._existing(request.match_info["name"])
        if loop.status not in TERMINAL:
            raise AwsError(
                "ValidationException",
                f"Human loop {loop.name} is {loop.status}; stop it before deleting it.",
            )
        del self.runtime.loops[loop.name]
        return {}

    async def api_list(self, request: web.Request) -> dict[str, Any]:
        query = request.query
        flow = self._flow(query.get("FlowDefinitionArn"), missing="ResourceNotFoundException")
        after = _query_time(query.get("CreationTimeAfter"), "creationTimeAfter")
        before = _query_time(query.get("CreationTimeBefore"), "creationTimeBefore")
        order = query.get("SortOrder", "Ascending")
        if order not in ("Ascending", "Descending"):
            raise AwsError(
                "ValidationException",
                validation_message(
                    order,
                    "sortOrder",
                    "Member must satisfy enum value set: [Ascending, Descending]",
                ),
            )
        max_results = _query_int(query.get("MaxResults", "100"))
        offset = _decode_token(query.get("NextToken"))
        loops = sorted(
            (
                loop
                for loop in self.runtime.loops.values()
                if loop.flow_definition_arn == flow.arn
                and (after is None or loop.creation_time >= after)
                and (before is None or loop.creation_time <= before)
            ),
            key=lambda loop: (loop.creation_time, loop.name),
            reverse=order == "Descending",
        )
        page = loops[offset : offset + max_results]
        summaries = []
        for loop in page:
            summary = {
                "HumanLoopName": loop.name,
                "HumanLoopStatus": loop.status,
                "CreationTime": iso_ms(loop.creation_time),
                "FlowDefinitionArn": loop.flow_definition_arn,
            }
            if loop.failure_reason:
                summary["FailureReason"] = loop.failure_reason
            summaries.append(summary)
        body: dict[str, Any] = {"HumanLoopSummaries": summaries}
        if offset + max_results < len(loops):
            body["NextToken"] = base64.urlsafe_b64encode(
                f"offset:{offset + max_results}".encode()
            ).decode()
        return body


def _query_time(value: str | None, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise AwsError(
            "ValidationException", validation_message(value, where, "ISO-8601 timestamp")
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _query_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 100:
        raise AwsError(
            "ValidationException",
            validation_message(value, "maxResults", "Member must have value between 1 and 100"),
        )
    return number


def _decode_token(token: str | None) -> int:
    """NextToken is opaque to clients; ours is a base64 offset, checked like AWS checks tokens."""
    if token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        prefix, _, number = text.partition(":")
        if prefix != "offset":
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AwsError("ValidationException", "The NextToken is not valid.") from None
