"""A reverse proxy in front of moto that names every AWS operation it forwards, and can refuse
chosen ones with AccessDenied, as a real account whose credentials lack a permission would.

Tests count calls with it ("the second run creates nothing") without trusting what the code
under test says about itself. Operations are named from ``X-Amz-Target`` (json protocols: SQS,
EventBridge) or, for S3's REST protocol, from the method and sub-resource.
"""

from __future__ import annotations

import json

from aiohttp import web

from .faulty_proxy import FaultyProxy

_S3_OPERATIONS = {
    ("HEAD", ""): "HeadBucket",
    ("GET", "cors"): "GetBucketCors",
    ("PUT", "cors"): "PutBucketCors",
    ("DELETE", "cors"): "DeleteBucketCors",
    ("PUT", ""): "CreateBucket",
}


def operation(request: web.Request) -> str:
    target = request.headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    sub = next(iter(request.query), "")
    bucket_only = request.path.strip("/").count("/") == 0
    name = _S3_OPERATIONS.get((request.method, sub)) if bucket_only else None
    return name or f"S3 {request.method} {request.path_qs}"


class RecordingProxy(FaultyProxy):
    """Forwards everything (no random faults); `operations` lists what passed, in order."""

    def __init__(self, upstream: str, *, deny: frozenset[str] = frozenset()) -> None:
        super().__init__(upstream, failures=0)
        self.operations: list[str] = []
        self.deny = deny

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        name = operation(request)
        self.operations.append(name)
        if name not in self.deny:
            return await super()._forward(request)
        message = f"not authorized to perform {name} (denied by the test proxy)"
        if "X-Amz-Target" in request.headers:
            return web.Response(
                status=400,
                body=json.dumps({"__type": "AccessDeniedException", "message": message}).encode(),
                content_type=request.content_type or "application/x-amz-json-1.1",
            )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
            f"<Message>{message}</Message></Error>"
        )
        return web.Response(status=403, text=body, content_type="application/xml")

    def writes(self) -> list[str]:
        """The operations that create or change something."""
        readers = ("Get", "Describe", "List", "Head")
        return [name for name in self.operations if not name.startswith(readers)]
