"""Wire helpers for the emulated services: one error type, two error encodings (aws.md §9.8)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

JSON_11 = "application/x-amz-json-1.1"

# DetectModerationLabels' modeled errors and their HTTP status (aws.md §1.5). ThrottlingException
# uses the 500 variant; HumanLoopQuotaExceededException the API reference's 400 (Smithy says 402).
REKOGNITION_STATUS: dict[str, int] = {
    "InvalidParameterException": 400,
    "InvalidImageFormatException": 400,
    "ImageTooLargeException": 400,
    "InvalidS3ObjectException": 400,
    "AccessDeniedException": 400,
    "ProvisionedThroughputExceededException": 400,
    "ThrottlingException": 500,
    "InternalServerError": 500,
    "HumanLoopQuotaExceededException": 400,
    "ResourceNotFoundException": 400,
    "ResourceNotReadyException": 400,
    "ValidationException": 400,  # unmodeled, but what the front-end validator sends
    "MissingAuthenticationTokenException": 403,  # unsigned request: refused before any operation
}

REKOGNITION_MESSAGES: dict[str, str] = {
    "InvalidParameterException": "Request has invalid parameters.",
    "InvalidImageFormatException": "Request has invalid image format.",
    "ImageTooLargeException": "Image size is too large.",
    "InvalidS3ObjectException": "Request has invalid S3 object.",
    "AccessDeniedException": "User is not authorized to perform rekognition:DetectModerationLabels",
    "ProvisionedThroughputExceededException": "Provisioned Rate exceeded.",
    "ThrottlingException": "Service Unavailable",
    "InternalServerError": "Internal server error",
    "HumanLoopQuotaExceededException": "The number of in-progress human reviews exceeds the quota.",
    "ResourceNotFoundException": "The requested resource cannot be found.",
    "ResourceNotReadyException": "The requested resource is not ready.",
    "ValidationException": "1 validation error detected.",
}

# The A2I runtime's errors and their status (aws.md §4).
A2I_STATUS: dict[str, int] = {
    "ValidationException": 400,
    "ResourceNotFoundException": 404,
    "ThrottlingException": 429,
    "InternalServerException": 500,
    "ServiceQuotaExceededException": 402,
    "ConflictException": 409,
    "MissingAuthenticationTokenException": 403,
}


class AwsError(Exception):
    """A modeled service error; `extra` carries additional top-level body members."""

    def __init__(self, code: str, message: str = "", extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message or REKOGNITION_MESSAGES.get(code, code)
        self.extra = extra or {}


def validation_message(value: object, where: str, constraint: str) -> str:
    """The AWS front-end validator's sentence for one broken model constraint."""
    return (
        f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy "
        f"constraint: {constraint}"
    )


def new_request_id() -> str:
    return str(uuid.uuid4())


def iso_ms(moment: datetime) -> str:
    """2025-03-04T10:12:31.512Z, the form A2I timestamps take."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def json11_response(body: dict[str, Any], request_id: str) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        content_type=JSON_11,
        headers={"x-amzn-RequestId": request_id},
    )


def json11_error(error: AwsError, request_id: str) -> web.Response:
    """Rekognition's form: {"__type", "Code", "Message", "Logref"} plus any extra members."""
    body = {
        "__type": error.code,
        "Code": error.code,
        "Message": error.message,
        "Logref": request_id,
    }
    body.update(error.extra)
    return web.Response(
        status=REKOGNITION_STATUS.get(error.code, 400),
        body=json.dumps(body).encode(),
        content_type=JSON_11,
        headers={"x-amzn-RequestId": request_id},
    )


def rest_json_response(body: dict[str, Any], request_id: str) -> web.Response:
    return web.json_response(body, headers={"x-amzn-RequestId": request_id})


def rest_json_error(error: AwsError, request_id: str) -> web.Response:
    """The A2I form: the code in x-amzn-ErrorType, the message in the body."""
    return web.json_response(
        {"message": error.message},
        status=A2I_STATUS.get(error.code, 400),
        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": error.code},
    )
