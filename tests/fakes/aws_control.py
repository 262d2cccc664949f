"""The emulator's control API: its scripting methods over HTTP, for a bot in another process or
a benchmark. JSON in, JSON out; misuse is 400 (bad value) or 404 (unknown loop or missing key).

    POST /_emulator/script             {"color": [r, g, b], "labels": {...}, "content_types": {...}}
    POST /_emulator/fail-next          {"code": "ThrottlingException", "count": 1}
    POST /_emulator/fault-rate         {"rate": 0.1, "codes": [...], "seed": 0}
    POST /_emulator/latency            {"seconds": 0.2}
    POST /_emulator/tps-quota          {"tps": 5}            (null: no quota)
    POST /_emulator/active-loop-limit  {"limit": 10}         (null: no limit)
    POST /_emulator/events-queue       {"url": "http://.../queue"}
    POST /_emulator/stop-delay         {"seconds": 0}        (null: stay Stopping)
    POST /_emulator/flow-definitions   {"name", "output_s3_uri", "conditions", "task_count"}
    POST /_emulator/loops/{name}/complete  {"answers": [[...]], "events_queue_url",
                                            "duplicate_event"}
    POST /_emulator/loops/{name}/fail      {"code", "reason", "events_queue_url", "duplicate_event"}
    POST /_emulator/loops/{name}/stop      {"events_queue_url", "duplicate_event"}
    GET  /_emulator/loops              {"loops": {name: {...Describe view, InputContent}}}
    GET  /_emulator/calls              {"calls": [{time, request_id, sha256, ..., error}]}
    POST /_emulator/reset              forget scripts, faults and calls
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .aws_conditions import ConditionError

if TYPE_CHECKING:
    from .aws import AwsEmulator

Route = tuple[str, str, Callable[[web.Request], Awaitable[web.Response]]]


def control_routes(emulator: AwsEmulator) -> list[Route]:
    """(method, path under /_emulator/, handler) for every control route."""
    return _Control(emulator).routes()


class _Control:
    """`/_emulator/...`: the scripting API over HTTP, JSON in and out, 400/404 on misuse."""

    def __init__(self, emulator: AwsEmulator) -> None:
        self.em = emulator

    def routes(self) -> list[Route]:
        table: list[tuple[str, str, Callable[[dict[str, Any], web.Request], Any]]] = [
            ("POST", "script", self.script),
            ("POST", "fail-next", lambda b, _: self.em.fail_next(b["code"], b.get("count", 1))),
            ("POST", "fault-rate", self.fault_rate),
            ("POST", "latency", lambda b, _: self.em.set_latency(float(b["seconds"]))),
            ("POST", "tps-quota", lambda b, _: self.em.set_tps_quota(b.get("tps"))),
            (
                "POST",
                "active-loop-limit",
                lambda b, _: self.em.set_active_loop_limit(b.get("limit")),
            ),
            ("POST", "events-queue", lambda b, _: self.em.set_events_queue(b.get("url"))),
            ("POST", "stop-delay", lambda b, _: self.em.set_stop_delay(b.get("seconds"))),
            ("POST", "flow-definitions", self.flow_definition),
            ("POST", "loops/{name}/complete", self.complete),
            ("POST", "loops/{name}/fail", self.fail),
            ("POST", "loops/{name}/stop", self.stop),
            (
                "GET",
                "loops",
                lambda _b, _r: {"loops": {n: lp.to_json() for n, lp in self.em.loops.items()}},
            ),
            ("GET", "calls", lambda _b, _r: {"calls": [c.to_json() for c in self.em.calls]}),
            ("POST", "reset", self.reset),
        ]
        return [(method, path, self._wrap(fn)) for method, path, fn in table]

    @staticmethod
    def _wrap(
        fn: Callable[[dict[str, Any], web.Request], Any],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                body = await request.json() if request.can_read_body else {}
                result = fn(body, request)
                if asyncio.iscoroutine(result):
                    result = await result
            except KeyError as exc:
                return web.json_response({"error": f"missing or unknown: {exc}"}, status=404)
            except (ValueError, TypeError, ConditionError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response(result if isinstance(result, dict) else {"ok": True})

        return handler

    def script(self, body: dict[str, Any], _: web.Request) -> None:
        r, g, b = body["color"]
        self.em.script((r, g, b), body["labels"], body.get("content_types"))

    def fault_rate(self, body: dict[str, Any], _: web.Request) -> None:
        codes = tuple(body.get("codes") or ())
        if codes:
            self.em.set_fault_rate(float(body["rate"]), codes, int(body.get("seed", 0)))
        else:
            self.em.set_fault_rate(float(body["rate"]), seed=int(body.get("seed", 0)))

    def flow_definition(self, body: dict[str, Any], _: web.Request) -> dict[str, Any]:
        arn = self.em.add_flow_definition(
            body["name"],
            output_s3_uri=body["output_s3_uri"],
            conditions=body.get("conditions"),
            task_count=int(body.get("task_count", 1)),
        )
        return {"FlowDefinitionArn": arn}

    async def complete(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        uri = await self.em.complete_loop(
            request.match_info["name"],
            body["answers"],
            events_queue_url=body.get("events_queue_url"),
            duplicate_event=bool(body.get("duplicate_event")),
        )
        return {"OutputS3Uri": uri}

    async def fail(self, body: dict[str, Any], request: web.Request) -> None:
        await self.em.fail_loop(
            request.match_info["name"],
            code=body.get("code", "Expired"),
            reason=body.get("reason", "The human loop expired before all workers answered."),
            events_queue_url=body.get("events_queue_url"),
            duplicate_event=bool(body.get("duplicate_event")),
        )

    async def stop(self, body: dict[str, Any], request: web.Request) -> None:
        await self.em.stop_loop(
            request.match_info["name"],
            events_queue_url=body.get("events_queue_url"),
            duplicate_event=bool(body.get("duplicate_event")),
        )

    def reset(self, _body: dict[str, Any], _: web.Request) -> None:
        self.em.reset()
