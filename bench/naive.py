"""The naive baseline: the usual sample code, one image at a time (download -> detect -> post).

It answers the same signed HTTP requests as modbot, reads the same settings, and talks to the
same stand-ins, so the benchmark can compare the two side by side. It is written fairly, not as
a straw man: Slack is acked at once (events go to an in-memory queue) and the blocking boto3
call runs in a thread, so acks stay fast; but one worker takes one image at a time, with no
rate limiter, no cache and no overlap. boto3 keeps its default retries (legacy mode).

Run: `python -m bench.naive --port N` with the bot's environment (SLACK_*, AWS_*, MODBOT_*).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from typing import Any

import aiohttp
import boto3
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("naive")

REVIEW_AT = 50.0  # the same band modbot's built-in policy alerts on
MIN_CONFIDENCE = 40.0


class NaiveBot:
    def __init__(self) -> None:
        self.token = os.environ["SLACK_BOT_TOKEN"]
        self.alerts = os.environ["MODBOT_ALERT_CHANNEL"]
        self.verifier = SignatureVerifier(os.environ["SLACK_SIGNING_SECRET"])
        self.slack = AsyncWebClient(token=self.token, base_url=os.environ["SLACK_API_URL"])
        self.rekognition = boto3.client("rekognition", region_name=os.environ["AWS_REGION"])
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.session: aiohttp.ClientSession | None = None

    async def events(self, request: web.Request) -> web.Response:
        body = await request.text()
        if not self.verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401)
        payload = json.loads(body)
        if payload.get("type") == "url_verification":
            return web.json_response({"challenge": payload.get("challenge")})
        event = payload.get("event") or {}
        if event.get("type") == "message" and event.get("subtype") == "file_share":
            for file in event.get("files") or []:
                if str(file.get("mimetype", "")).startswith("image/"):
                    self.queue.put_nowait(file)
        return web.Response()

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "queued": self.queue.qsize()})

    async def worker(self) -> None:
        while True:
            file = await self.queue.get()
            try:
                await self.moderate(file)
            except Exception as exc:
                log.warning("could not scan %s: %s", file.get("name"), exc)
                await self.slack.chat_postMessage(
                    channel=self.alerts, text=f"Could not scan {file.get('name')}: {exc}"
                )

    async def moderate(self, file: dict[str, Any]) -> None:
        assert self.session is not None
        url = file.get("url_private_download") or file["url_private"]
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.get(url, headers=headers) as response:
            response.raise_for_status()
            data = await response.read()
        result = await asyncio.to_thread(
            self.rekognition.detect_moderation_labels,
            Image={"Bytes": data},
            MinConfidence=MIN_CONFIDENCE,
        )
        labels = [x for x in result["ModerationLabels"] if x["Confidence"] >= REVIEW_AT]
        if labels:
            found = ", ".join(f"{x['Name']} ({x['Confidence']:.1f}%)" for x in labels)
            await self.slack.chat_postMessage(
                channel=self.alerts, text=f"Flagged image {file.get('name')}: {found}"
            )


def app() -> web.Application:
    bot = NaiveBot()
    application = web.Application()

    async def lifecycle(_app: web.Application) -> Any:
        bot.session = aiohttp.ClientSession()
        task = asyncio.create_task(bot.worker())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bot.session.close()

    application.cleanup_ctx.append(lifecycle)
    application.router.add_post("/slack/events", bot.events)
    application.router.add_get("/healthz", bot.healthz)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    web.run_app(app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
