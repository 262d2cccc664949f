"""Checks on a DetectModerationLabels request that botocore leaves to the server (aws.md §1.2).

Model constraints (maximum, pattern, enum) fail as the front-end validator's ValidationException
with AWS's "1 validation error detected" sentence; image problems fail as the modeled codes.
Choices on points aws.md leaves UNCONFIRMED:
- Bytes over 5,242,880 decoded bytes (and empty Bytes) are ValidationException;
- an image side over 10,000 px is InvalidParameterException (modeled, like the < 80 px case)
  with the "Input image dimensions W x H exceed ..." message seen in the wild.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from .aws_a2i import check_content_classifiers, check_loop_name
from .aws_images import BadImage, dimensions, sniff_format
from .aws_wire import AwsError, validation_message

MAX_BYTES = 5_242_880
MIN_SIDE, MAX_SIDE = 80, 10_000
DEFAULT_MIN_CONFIDENCE = 50.0
BUCKET = re.compile(r"^[0-9A-Za-z.\-_]*$")
PROJECT_VERSION = re.compile(
    r"(^arn:[a-z\d-]+:rekognition:[a-z\d-]+:\d{12}:project\/[a-zA-Z0-9_.\-]{1,255}\/version\/"
    r"[a-zA-Z0-9_.\-]{1,255}\/[0-9]+$)"
)
S3_UNREADABLE = (
    "Unable to get object metadata from S3. Check object key, region and/or access permissions."
)


def _invalid(value: object, where: str, constraint: str) -> AwsError:
    return AwsError("ValidationException", validation_message(value, where, constraint))


def min_confidence(body: dict[str, Any]) -> float:
    """MinConfidence, 0-100, defaulting to 50."""
    value = body.get("MinConfidence", DEFAULT_MIN_CONFIDENCE)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _invalid(value, "minConfidence", "Member must be a number")
    if value < 0:
        raise _invalid(value, "minConfidence", "Member must have value greater than or equal to 0")
    if value > 100:
        raise _invalid(value, "minConfidence", "Member must have value less than or equal to 100")
    return float(value)


def check_loop_config(config: object) -> dict[str, Any]:
    """HumanLoopConfig's name pattern and length, ARN length and classifier enum."""
    if not isinstance(config, dict):
        raise AwsError("InvalidParameterException", "HumanLoopConfig must be an object.")
    check_loop_name(config.get("HumanLoopName"), "humanLoopConfig.humanLoopName")
    arn = config.get("FlowDefinitionArn")
    if not isinstance(arn, str) or not arn or len(arn) > 256:
        raise _invalid(
            arn,
            "humanLoopConfig.flowDefinitionArn",
            "Member must have length less than or equal to 256",
        )
    check_content_classifiers(
        config.get("DataAttributes"), "humanLoopConfig.dataAttributes.contentClassifiers"
    )
    return config


def check_project_version(body: dict[str, Any]) -> None:
    """Custom Moderation adapters are not emulated: a well-formed ARN is simply not found."""
    if "ProjectVersion" not in body:
        return
    if not PROJECT_VERSION.match(str(body["ProjectVersion"])):
        raise _invalid(
            body["ProjectVersion"], "projectVersion", f"pattern {PROJECT_VERSION.pattern}"
        )
    raise AwsError("ResourceNotFoundException", "Custom Moderation adapters are not emulated.")


@dataclass(frozen=True)
class ImageSource:
    """Where the image comes from: decoded Bytes, or an S3 location (bucket, name, version?)."""

    data: bytes | None
    s3_object: dict[str, str] | None


def image_source(image: object) -> ImageSource:
    """Exactly one of Bytes (base64, 1..5 MiB decoded) and a well-formed S3Object."""
    if not isinstance(image, dict) or ("Bytes" in image) == ("S3Object" in image):
        raise AwsError(
            "InvalidParameterException", "Provide exactly one of Image.Bytes and Image.S3Object."
        )
    if "S3Object" in image:
        return ImageSource(None, _s3_object(image["S3Object"]))
    try:
        data = base64.b64decode(image["Bytes"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise AwsError("InvalidParameterException", "Image.Bytes is not valid base64.") from None
    if not 1 <= len(data) <= MAX_BYTES:
        bound = "greater than or equal to 1" if not data else f"less than or equal to {MAX_BYTES}"
        raise _invalid(
            f"java.nio.HeapByteBuffer[pos=0 lim={len(data)} cap={len(data)}]",
            "image.bytes",
            f"Member must have length {bound}",
        )
    return ImageSource(data, None)


def _s3_object(s3: object) -> dict[str, str]:
    if not isinstance(s3, dict):
        raise AwsError("InvalidParameterException", "Image.S3Object must be an object.")
    bucket, name, version = s3.get("Bucket"), s3.get("Name"), s3.get("Version")
    if not isinstance(bucket, str) or not 3 <= len(bucket) <= 255 or not BUCKET.match(bucket):
        raise _invalid(
            bucket,
            "image.s3Object.bucket",
            f"Member must satisfy regular expression pattern: {BUCKET.pattern}",
        )
    if not isinstance(name, str) or not 1 <= len(name) <= 1024:
        raise _invalid(name, "image.s3Object.name", "Member must have length between 1 and 1024")
    found = {"bucket": bucket, "name": name}
    if version is not None:
        if not isinstance(version, str) or not 1 <= len(version) <= 1024:
            raise _invalid(
                version, "image.s3Object.version", "Member must have length between 1 and 1024"
            )
        found["version"] = version
    return found


def check_image(data: bytes) -> None:
    """JPEG/PNG magic, then both sides within 80..10,000 px (from the header alone)."""
    try:
        sniff_format(data)
        width, height = dimensions(data)
    except BadImage:
        raise AwsError("InvalidImageFormatException") from None
    if min(width, height) < MIN_SIDE:
        raise AwsError("InvalidParameterException", "Request has invalid parameters.")
    if max(width, height) > MAX_SIDE:
        raise AwsError(
            "InvalidParameterException",
            f"Input image dimensions {width} x {height} exceed maximum dimension size of "
            f"{MAX_SIDE} pixels",
        )
