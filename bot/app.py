"""The one composition root: builds every part from Settings; runs over HTTP or Socket Mode."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.adapters.database.appeals import AppealStore
from bot.adapters.database.bank import BankStore
from bot.adapters.database.leases import DatabaseLeases
from bot.adapters.database.removals import RemovalStore
from bot.adapters.database.replicas import ReplicaRegistry
from bot.adapters.database.retention import Retention
from bot.adapters.database.reviews import ReviewStore
from bot.adapters.database.scans import Store
from bot.adapters.database.workqueue import DatabaseWorkQueue
from bot.adapters.detectors import build_detector
from bot.adapters.fetch import Fetcher
from bot.adapters.hma import HmaClient
from bot.adapters.http_server import limited_app, serve, start
from bot.adapters.images.budget import DecodeBudget, install
from bot.adapters.images.pdq import image_hashes
from bot.adapters.metrics import PrometheusMetrics, metrics_handler
from bot.adapters.rekognition import RekognitionDetector
from bot.adapters.slack import SlackNotifier, web_client
from bot.adapters.slack_admin import SlackDirectMessages, SlackRemover, check_admin_token
from bot.adapters.slack_directory import SlackDirectory
from bot.core.errors import ConfigError
from bot.core.metrics import Metrics
from bot.core.pacing import scan_workers
from bot.core.policy import Policy
from bot.core.policy.fingerprint import policy_fingerprint
from bot.orchestration.alert_view import AlertView
from bot.orchestration.appeal import Appeals, RepostMemory
from bot.orchestration.bank import HashBank
from bot.orchestration.claims import Claims, Unshared
from bot.orchestration.home import HomeTab
from bot.orchestration.neardup import NearDuplicates, keep_pushing
from bot.orchestration.pipeline import Pipeline, PipelineConfig
from bot.orchestration.removal import Removals
from bot.orchestration.retention import keep_pruning
from bot.orchestration.scan import one_detector
from bot.orchestration.scheduler import SchedulerConfig
from bot.orchestration.services import Services
from bot.orchestration.slack_review import Reviewers
from bot.orchestration.supervisor import Supervisor
from bot.review_setup import build_review_backend
from bot.settings import ReviewBackendName, Settings, removal_problems
from handlers import register_all

log = logging.getLogger(__name__)

SLACK_FILES_ORIGIN = "https://files.slack.com"


@dataclass
class Runtime:
    """Everything a running modbot holds, started and stopped together."""

    store: Store
    client: AsyncWebClient
    pipeline: Pipeline
    bolt: AsyncApp
    supervisor: Supervisor  # the background loops; /healthz reports any that stopped
    metrics: PrometheusMetrics  # GET /metrics
    near: NearDuplicates | None = None  # PDQ hashes, the hash bank and HMA


@asynccontextmanager
async def running(settings: Settings, policy: Policy) -> AsyncIterator[Runtime]:
    """Build, start, and on exit drain and close every part (in reverse order)."""
    async with AsyncExitStack() as stack:
        install(DecodeBudget(settings.decode_memory_bytes))  # image decodes share it
        metrics = PrometheusMetrics()
        store = Store.from_url(settings.sqlalchemy_url)
        stack.push_async_callback(store.close)
        await store.upgrade()
        # One replica among any number on a shared database (PostgreSQL); SQLite: the only one.
        shared = store.engine.dialect.name != "sqlite"
        holder = uuid.uuid4().hex[:16]
        leases = DatabaseLeases(store, holder=holder, seconds=settings.lease_seconds)
        claims: Claims = leases if shared else Unshared()
        token = settings.slack_bot_token.get_secret_value()
        slack_session = await stack.enter_async_context(aiohttp.ClientSession(trust_env=False))
        client = web_client(token, settings.slack_api_url, slack_session)
        notifier = SlackNotifier(client, settings.alert_channel)
        fetcher = await stack.enter_async_context(
            Fetcher(
                token_origins=(SLACK_FILES_ORIGIN, settings.slack_api_origin),
                trusted_origins=(settings.slack_api_origin,),
                allow_networks=settings.allow_private_networks,
                max_bytes=settings.max_download_bytes,
            )
        )
        retry = settings.retry
        detector = build_detector(
            settings.detector.value,
            store.engine,
            region=settings.region,
            tps=settings.rekognition_tps,
            # A few quick retries here; the pipeline retries the scan after that (retry limit).
            base_delay=min(0.2, retry.base),
            max_delay=min(5.0, retry.cap),
            metrics=metrics,
        )
        stack.callback(detector.close)
        supervisor = Supervisor(settings.retry)
        if shared:
            registry = ReplicaRegistry(
                store,
                holder=holder,
                policy=policy_fingerprint(policy),
                lease_seconds=settings.lease_seconds,
            )
            await registry.beat()  # warns at once if live replicas run another policy
            stack.push_async_callback(registry.leave)
            supervisor.start("heartbeat", lambda: leases.keep_renewed(also=registry.beat))
        else:
            supervisor.start("heartbeat", leases.keep_renewed)
        near = await near_duplicates(settings, store, supervisor, slack_session, metrics)
        acting = await _acting(
            settings,
            policy=policy,
            store=store,
            notifier=notifier,
            client=client,
            session=slack_session,
            metrics=metrics,
            bank=near.bank,
            claims=claims,
        )
        reviews = await stack.enter_async_context(
            build_review_backend(
                settings,
                store=store,
                notifier=notifier,
                client=client,
                detector=detector if isinstance(detector, RekognitionDetector) else None,
                supervisor=supervisor,
                metrics=metrics,
                view=acting.view if acting else None,
                follow_up=acting.removals if acting else None,
                claims=claims,
            )
        )
        if acting is not None:
            supervisor.start("removals", acting.removals.run)
            supervisor.start("appeals", acting.appeals.run)
        stack.push_async_callback(supervisor.close)  # tasks stop before the backend closes
        retention = Retention(store)
        supervisor.start("retention", lambda: keep_pruning(retention, settings.retention_days))
        # The A2I `flow` trigger: every scan call carries a human loop named from the scan.
        flow = reviews.a2i if reviews.a2i is not None and reviews.a2i.detects else None
        pipeline = Pipeline(
            queue=DatabaseWorkQueue(
                store, holder=holder, lease_seconds=settings.lease_seconds, exclusive=not shared
            ),
            claims=claims,
            store=store,
            fetcher=fetcher,
            detector_for=flow.detector_for if flow is not None else one_detector(detector),
            notifier=notifier,
            policy=policy,
            reviews=reviews.backend,
            ledger=reviews.ledger,
            metrics=metrics,
            removals=acting.removals if acting else None,
            near=near,
            config=PipelineConfig(
                bot_token=token,
                link_timeout=settings.link_timeout_seconds,
                watch_channels=frozenset(settings.watch_channels),
                scheduling=SchedulerConfig(
                    workers=scan_workers(settings.rekognition_tps),
                    retry=retry,
                    note_interval=settings.note_interval_seconds,
                    # Replicas: a dead one's scans are looked for well within a lease.
                    sweep_interval=(
                        min(retry.cap, max(0.5, settings.lease_seconds / 3)) if shared else None
                    ),
                ),
            ),
        )
        authorize = await authorize_once(client)
        bolt = AsyncApp(
            # Without a token of its own Bolt takes each request's token from `authorize`.
            client=web_client(None, settings.slack_api_url, slack_session),
            authorize=authorize,
            signing_secret=(
                settings.slack_signing_secret.get_secret_value()
                if settings.slack_signing_secret
                else None
            ),
            process_before_response=True,
            logger=logging.getLogger("slack_bolt"),
        )
        home = HomeTab(
            store=store, publisher=notifier, policy=policy, may_vote=_voters(settings, client)
        )
        register_all(
            bolt,
            Services(
                pipeline=pipeline,
                policy=policy,
                votes=reviews.votes,
                home=home,
                removals=acting.removals if acting else None,
                appeals=acting.appeals if acting else None,
            ),
        )
        await pipeline.start()
        stack.push_async_callback(pipeline.stop, settings.shutdown_grace_seconds)
        yield Runtime(store, client, pipeline, bolt, supervisor, metrics, near)


def _voters(settings: Settings, client: AsyncWebClient) -> Callable[[str], Awaitable[bool | None]]:
    """Who may vote in Slack (for the Home tab): MODBOT_REVIEWERS under the slack backend;
    None (no votes in Slack) when reviews happen in A2I or not at all."""
    if settings.review_backend is not ReviewBackendName.SLACK:

        async def not_in_slack(_user: str) -> bool | None:
            return None

        return not_in_slack
    allows = Reviewers(SlackDirectory(client), settings.reviewers).allows

    async def may_vote(user: str) -> bool | None:
        return await allows(user)

    return may_vote


@dataclass
class Acting:
    """Removal and appeals (PRODUCT §10), present when SLACK_ADMIN_TOKEN is set."""

    removals: Removals
    appeals: Appeals
    view: AlertView


async def _acting(
    settings: Settings,
    *,
    policy: Policy,
    store: Store,
    notifier: SlackNotifier,
    client: AsyncWebClient,
    session: aiohttp.ClientSession,
    metrics: Metrics,
    bank: HashBank | None,
    claims: Claims,
) -> Acting | None:
    """The admin token's own client (Slack's API origin only: it never reaches the fetcher),
    checked at start, and what acts with it."""
    problems = removal_problems(settings, policy)
    if problems:
        raise ConfigError(problems)
    if settings.slack_admin_token is None:
        return None
    admin = web_client(
        settings.slack_admin_token.get_secret_value(), settings.slack_api_url, session
    )
    await check_admin_token(admin, client)
    removal_store, appeal_store, review_store = (
        RemovalStore(store),
        AppealStore(store),
        ReviewStore(store),
    )
    view = AlertView(store, review_store, removal_store, appeal_store)
    reviewers = Reviewers(SlackDirectory(client), settings.reviewers)
    dms = SlackDirectMessages(client)
    removals = Removals(
        store=store,
        removals=removal_store,
        notifier=notifier,
        remover=SlackRemover(admin, client),
        dms=dms,
        policy=policy,
        reviewers=reviewers,
        view=view,
        retry=settings.retry,
        notify_poster=settings.notify_poster,
        metrics=metrics,
        claims=claims,
    )
    appeals = Appeals(
        store=store,
        removals=removal_store,
        appeals=appeal_store,
        notifier=notifier,
        dms=dms,
        reviewers=reviewers,
        quorum=settings.review_quorum,
        memory=RepostMemory(review_store, bank),
        view=view,
        retry=settings.retry,
        claims=claims,
    )
    return Acting(removals, appeals, view)


async def near_duplicates(
    settings: Settings,
    store: Store,
    supervisor: Supervisor,
    session: aiohttp.ClientSession,
    metrics: Metrics,
) -> NearDuplicates:
    """PDQ hashing, the hash bank (loaded now, then followed) and the optional HMA partner."""
    bank_store = BankStore(store)
    bank = HashBank(bank_store, distance=settings.match_distance)
    started = time.monotonic()
    await bank.refresh()
    log.info("hash bank: %d hashes loaded in %.1f s", len(bank), time.monotonic() - started)
    supervisor.start("hash bank refresh", lambda: bank.keep_fresh(settings.bank_refresh_seconds))
    hma = None
    if settings.hma is not None:
        hma = HmaClient(session, settings.hma, metrics=metrics)
        if hma.push_bank is not None:
            partner = hma
            supervisor.start(
                "HMA push",
                lambda: keep_pushing(bank_store, partner, settings.bank_refresh_seconds),
            )
    return NearDuplicates(
        hasher=image_hashes, records=bank_store, alerts=store, bank=bank, partner=hma
    )


# Errors meaning the token itself is bad (not that Slack is briefly unreachable).
TOKEN_REJECTED = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)


Authorize = Callable[..., Awaitable[AuthorizeResult]]


async def authorize_once(client: AsyncWebClient) -> Authorize:
    """auth.test at start, and Bolt's `authorize=` hook answering every request from its result.

    A token Slack refuses stops the start with a clear line. If Slack cannot answer at start,
    the first request asks again, once for all requests in flight (each making its own call
    slowed the first acks of a burst); the identity is kept for the app's lifetime.
    """
    token = client.token
    known: AuthorizeResult | None = None
    try:
        known = _identity(await client.auth_test(), token)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or exc.response.status_code)
        if error in TOKEN_REJECTED:
            raise ConfigError([f"SLACK_BOT_TOKEN: Slack refused it ({error})"]) from None
        log.warning("auth.test failed at start (%s); retried on the first request", error)
    except aiohttp.ClientError as exc:
        log.warning("Slack unreachable at start (%s); retried on the first request", exc)
    asking = asyncio.Lock()

    async def authorize() -> AuthorizeResult:
        nonlocal known
        if known is None:
            async with asking:
                if known is None:
                    known = _identity(await client.auth_test(), token)
        return known

    return authorize


def _identity(auth_test: AsyncSlackResponse, token: str | None) -> AuthorizeResult:
    """Who the bot is: Bolt's self-event filter drops events from this bot user and bot id."""
    return AuthorizeResult.from_auth_test_response(
        auth_test_response=auth_test,
        bot_token=token,
        bot_scopes=auth_test.headers.get("x-oauth-scopes"),
    )


RUNTIME = web.AppKey("runtime", Runtime)


def http_app(settings: Settings, policy: Policy) -> web.Application:
    """POST /slack/events (events, commands, interactivity; signatures checked), GET /healthz
    and GET /metrics."""
    app = limited_app(settings.http_limits)
    secret = settings.slack_signing_secret
    verifier = SignatureVerifier(secret.get_secret_value()) if secret else None

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with running(settings, policy) as runtime:
            app[RUNTIME] = runtime
            yield

    async def slack_events(request: web.Request) -> web.Response:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "").strip()
        if not timestamp.isdecimal():  # Bolt int()s it inside its check: a 500, not a 401
            return web.json_response({"error": "invalid request"}, status=401)
        runtime = request.app[RUNTIME]
        # The signature is judged before the body is parsed, so unsigned junk never reaches a
        # parser; a signed body that Bolt cannot read is the sender's error (400), not ours.
        raw = await request.text()
        if verifier is not None and not verifier.is_valid_request(raw, dict(request.headers)):
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            bolt_request = await to_bolt_request(request)
        except (ValueError, TypeError, AttributeError):
            log.info("unreadable request body (%d bytes)", len(raw))
            return web.json_response({"error": "unreadable request"}, status=400)
        if not isinstance(bolt_request.body.get("event", {}), dict):
            return web.json_response({"error": "unreadable request"}, status=400)
        response = await runtime.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/slack/events", slack_events)
    add_status_routes(app)
    return app


def add_status_routes(app: web.Application) -> None:
    """GET /healthz and GET /metrics, answered from the Runtime in `app[RUNTIME]`."""

    async def healthz(request: web.Request) -> web.Response:
        runtime = request.app[RUNTIME]
        reachable = await runtime.store.ping()
        stopped = runtime.supervisor.stopped  # background work that no longer happens
        healthy = reachable and not stopped
        body = {
            "ok": healthy,
            "store": "ok" if reachable else "unreachable",
            "queued": runtime.pipeline.queued,
            "stopped_tasks": stopped,
        }
        return web.json_response(body, status=200 if healthy else 503)

    async def metrics(request: web.Request) -> web.StreamResponse:
        runtime = request.app[RUNTIME]
        return await metrics_handler(runtime.metrics, runtime.store.engine)(request)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


def serve_http(settings: Settings, policy: Policy, port: int) -> None:
    log.info("modbot listening on port %d (HTTP mode)", port)
    # SIGTERM/SIGINT end it gracefully, running the cleanup contexts (bot/adapters/http_server.py).
    asyncio.run(serve(http_app(settings, policy), port))


@asynccontextmanager
async def socket_mode(settings: Settings, policy: Policy) -> AsyncIterator[Runtime]:
    """The same runtime, fed over a Socket Mode WebSocket instead of HTTP."""
    assert settings.slack_app_token is not None
    async with running(settings, policy) as runtime:
        handler = AsyncSocketModeHandler(
            runtime.bolt,
            app_token=settings.slack_app_token.get_secret_value(),
            web_client=runtime.client,
        )
        await handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in slack_bolt
        try:
            yield runtime
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]


@asynccontextmanager
async def status_server(
    runtime: Runtime, settings: Settings, port: int, host: str | None = None
) -> AsyncIterator[int]:
    """GET /healthz and GET /metrics on `port` (Socket Mode has no HTTP port of its own, and
    Kubernetes probes and Prometheus need one). Yields the port actually bound."""
    app = limited_app(settings.http_limits)
    app[RUNTIME] = runtime
    add_status_routes(app)
    runner = await start(app, host, port)
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def serve_socket(settings: Settings, policy: Policy, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with (
        socket_mode(settings, policy) as runtime,
        status_server(runtime, settings, port),
    ):
        log.info("modbot connected (Socket Mode); /healthz and /metrics on port %d", port)
        await stop.wait()
