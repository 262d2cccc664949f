"""Migrations: the schema they build is bot/adapters/database/schema.py's, databases from the
release before
migrations are kept, concurrent starts are safe, and a failing revision changes nothing.

Every test runs on SQLite and on PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, inspect, select
from sqlalchemy.engine import Connection

from bot.adapters.database import migrate, schema
from bot.adapters.database.engine import async_url, make_engine
from bot.adapters.database.migrations import baseline
from bot.adapters.database.reviews import ReviewStore, VoteRule
from bot.adapters.database.scans import Store
from bot.core.model import Decision, Detection, ImageRef, Origin, ScanRequest, Trigger
from tests.harness import REPO_ROOT


async def _sync(url: str, fn: Any) -> Any:
    """Run fn(sync connection) in one transaction on the database at url."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, schema.metadata))


def _tables(conn: Connection) -> dict[str, list[str]]:
    inspector = inspect(conn)
    return {
        name: sorted(column["name"] for column in inspector.get_columns(name))
        for name in inspector.get_table_names()
    }


async def test_migrations_build_exactly_the_schema_of_bot_schema(database_url: str) -> None:
    """Upgraded to head, the database has what bot/adapters/database/schema.py declares, nothing
    more or less.

    When this fails after a change to bot/adapters/database/schema.py: add a revision (`modbot db
    revision`)."""
    url = async_url(database_url)
    assert await migrate.current(url) is None
    await migrate.upgrade(url)
    assert await _sync(url, _differences) == []
    assert await migrate.current(url) == migrate.head()


async def test_a_database_from_the_release_before_migrations_is_kept_whole(
    database_url: str,
) -> None:
    """A database made by create_all (no alembic_version), with rows in every table, is
    stamped at 0001, upgraded, and still holds and serves every row."""
    url = async_url(database_url)
    request = ScanRequest(ImageRef(url="https://x.example/a.png"), Origin(Trigger.LINK, "C1"), "k")
    now = time.time()

    def release_database(conn: Connection) -> None:
        baseline.metadata.create_all(conn)
        tables = baseline.metadata.tables
        conn.execute(
            insert(tables["scans"]).values(
                id="s1",
                dedup_key="k",
                request={
                    "image": {"url": "https://x.example/a.png"},
                    "origin": {"trigger": "link", "channel": "C1"},
                    "dedup_key": "k",
                },
                status="pending",
                attempts=1,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            insert(tables["detections"]).values(
                sha256="h" * 64,
                result={"labels": [], "model_version": "7.0", "min_confidence": 40.0},
                min_confidence=40.0,
                created_at=now,
            )
        )
        conn.execute(
            insert(tables["alerts"]).values(
                scan_id="s0",
                sha256="h" * 64,
                channel="C0",
                ts="1.1",
                permalink="https://p/1",
                decision="review",
                message={"text": "Needs review"},
                created_at=now,
            )
        )
        conn.execute(insert(tables["events"]).values(event_id="Ev1", received_at=now))
        conn.execute(
            insert(tables["reviews"]).values(
                scan_id="s0",
                sha256="h" * 64,
                backend="slack",
                status="open",
                reported=False,
                created_at=now,
            )
        )
        conn.execute(
            insert(tables["votes"]).values(scan_id="s0", user="U1", violation=True, at=now)
        )
        conn.execute(
            insert(tables["audit"]).values(at=now, scan_id="s0", action="alerted", detail={})
        )

    await _sync(url, release_database)
    assert await migrate.current(url) is None

    store = Store.from_url(url)
    try:
        await store.upgrade()
        assert await migrate.current(url) == migrate.head()
        assert await _sync(url, _differences) == []
        [pending] = await store.pending()
        assert (pending.scan_id, pending.attempts) == ("s1", 1)
        assert pending.request == request
        detection = await store.detection("h" * 64, "rekognition")
        assert detection is not None
        assert detection.model_version == "7.0"
        alert = await store.alert_for("s0")
        assert alert is not None
        assert alert.permalink == "https://p/1"
        assert await store.alert_message("s0") == {"text": "Needs review"}
        assert await store.accept([request], event_id="Ev1") == []  # the event id was kept
        reviews = ReviewStore(store)
        ballot = await reviews.vote("s0", "U2", True, VoteRule(quorum=2, allowed=None))
        assert ballot.verdict is not None  # the release's vote by U1 still counts
        assert sorted(ballot.verdict.reviewers) == ["U1", "U2"]
        actions = [row["action"] for row in await store.audit_log("s0")]
        assert actions == ["alerted", "vote", "verdict"]
        await store.finish("s1", sha256="h" * 64, decision=Decision.ALLOW, mode="enforce")
        assert await store.status_counts() == {"done": 1}
    finally:
        await store.close()


async def test_alert_causes_stored_inside_the_message_move_to_their_own_column(
    database_url: str,
) -> None:
    """A database at 0002 whose alerts keep their causes inside the message JSON: after the
    upgrade the message is the Slack message alone, and a violation vote still confirms the
    causes the old row named."""
    url = async_url(database_url)
    await migrate.upgrade(url, revision="0002")
    posted = {"text": "Needs review: Weapons 72.4%", "blocks": [{"type": "section"}]}
    now = time.time()

    def old_alerts(conn: Connection) -> None:
        old = Table("alerts", MetaData(), autoload_with=conn)
        for scan_id, message in (
            ("s1", {**posted, "causes": ["Weapons", "Explicit Nudity"]}),
            ("s2", {"text": "alert from before causes were kept"}),
        ):
            conn.execute(
                insert(old).values(
                    scan_id=scan_id,
                    sha256="h" * 64,
                    channel="C0",
                    ts="1.1",
                    decision="review",
                    message=message,
                    created_at=now,
                )
            )

    await _sync(url, old_alerts)
    store = Store.from_url(url)
    try:
        await store.upgrade()
        assert await _sync(url, _differences) == []
        assert await store.alert_message("s1") == posted
        assert await store.alert_message("s2") == {"text": "alert from before causes were kept"}
        reviews = ReviewStore(store)
        rule = VoteRule(quorum=1, allowed=None)
        for scan, causes in (("s1", ("Weapons", "Explicit Nudity")), ("s2", ())):
            await reviews.open(scan, "h" * 64, "slack")
            verdict = (await reviews.vote(scan, "U1", True, rule)).verdict
            assert verdict is not None
            assert verdict.labels == causes
    finally:
        await store.close()

    def downgraded(conn: Connection) -> dict[str, Any]:
        cfg = migrate.config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
        old = Table("alerts", MetaData(), autoload_with=conn)
        return {row.scan_id: row.message for row in conn.execute(select(old))}

    assert await _sync(url, downgraded) == {  # 0002's code finds the causes where it kept them
        "s1": {**posted, "causes": ["Weapons", "Explicit Nudity"]},
        "s2": {"text": "alert from before causes were kept", "causes": []},
    }


async def test_a_database_with_a_shape_no_release_had_is_refused(database_url: str) -> None:
    """Unversioned tables missing a released column stop the upgrade with the column named."""
    url = async_url(database_url)

    def odd_database(conn: Connection) -> None:
        odd = MetaData()
        Table("scans", odd, Column("id", String(32), primary_key=True))
        odd.create_all(conn)

    await _sync(url, odd_database)
    with pytest.raises(migrate.SchemaMismatch, match=r"scans\.dedup_key"):
        await migrate.upgrade(url)
    assert await migrate.current(url) is None


async def test_replicas_starting_at_once_migrate_once(database_url: str, tmp_path: Path) -> None:
    """Three `modbot db upgrade` processes on one new database at the same moment all
    succeed, and the schema is built once (PostgreSQL: advisory lock; SQLite: BEGIN
    IMMEDIATE)."""
    url = async_url(database_url)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DATABASE_URL": database_url}

    async def upgrade() -> tuple[int | None, str]:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "db",
            "upgrade",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await child.communicate()
        return child.returncode, output.decode()

    async with asyncio.timeout(60):
        results = await asyncio.gather(*(upgrade() for _ in range(3)))
    for code, output in results:
        assert (code, output) == (0, f"database at revision {migrate.head()}\n")
    assert await migrate.current(url) == migrate.head()
    assert await _sync(url, _differences) == []
    await migrate.upgrade(url)  # and again later: nothing to do
    assert await migrate.current(url) == migrate.head()


FAILING_REVISION = '''
"""A revision that changes the schema and then fails.

Revision ID: {revision}
Revises: {down_revision}
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("extra", sa.Column("id", sa.Integer, primary_key=True))
    with op.batch_alter_table("scans") as batch:
        batch.add_column(sa.Column("note", sa.Text))
    op.execute("INSERT INTO extra (id) VALUES (1)")
    raise RuntimeError("the revision fails half-way")


def downgrade() -> None:
    pass
'''


async def test_a_failing_revision_leaves_the_schema_as_it_was(
    database_url: str, tmp_path: Path
) -> None:
    """A revision that created a table and altered another before failing leaves neither
    change, the version where it was, and every row in place."""
    url = async_url(database_url)
    store = Store.from_url(url)
    await store.upgrade()
    request = ScanRequest(ImageRef(url="https://x.example/a.png"), Origin(Trigger.LINK, "C1"), "k")
    [scan] = await store.accept([request])
    await store.close()
    before = await _sync(url, _tables)
    versions = tmp_path / "versions"
    versions.mkdir()
    failing = _next_revision()
    (versions / f"{failing}_fails.py").write_text(
        textwrap.dedent(FAILING_REVISION).format(revision=failing, down_revision=migrate.head())
    )

    with pytest.raises(RuntimeError, match="fails half-way"):
        await migrate.upgrade(url, version_locations=[versions])

    assert await _sync(url, _tables) == before
    assert await migrate.current(url) == migrate.head()
    store = Store.from_url(url)
    try:
        assert [pending.scan_id for pending in await store.pending()] == [scan]
    finally:
        await store.close()


async def test_a_new_table_in_bot_schema_becomes_the_next_revision(
    database_url: str, tmp_path: Path
) -> None:
    """`modbot db revision` writes the next numbered revision from a change to
    bot/adapters/database/schema.py,
    and it applies."""
    url = async_url(database_url)
    scratch = f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
    versions = tmp_path / "versions"
    versions.mkdir()
    table = Table(
        "leases_example",
        schema.metadata,
        Column("id", Integer, primary_key=True),
        Column("holder", String(64), nullable=False, index=True),
    )
    try:
        path = await migrate.revision(
            scratch, "add leases example", version_locations=[versions], version_path=versions
        )
        assert path.name == f"{_next_revision()}_add_leases_example.py"
        assert "op.create_table('leases_example'" in path.read_text().replace('"', "'")
        await migrate.upgrade(url, version_locations=[versions])
        assert await migrate.current(url) == path.name[:4]
        assert await _sync(url, _differences) == []
        count = await _sync(
            url, lambda conn: conn.execute(select(func.count()).select_from(table)).scalar_one()
        )
        assert count == 0
    finally:
        schema.metadata.remove(table)


def _next_revision() -> str:
    """The number the next revision after this release's newest gets."""
    return f"{int(migrate.head()) + 1:04d}"


async def test_a_detection_stored_by_the_previous_release_reads_back_as_rekognitions(
    database_url: str,
) -> None:
    """Detections of the release at 0002 (keyed by hash alone, all made by Rekognition) become
    detector "rekognition" with their model version, and are still reused; another detector
    does not see them, and its own result for the same bytes is stored beside them."""
    url = async_url(database_url)
    await migrate.upgrade(url, revision="0002")
    result = {
        "labels": [{"name": "Violence", "parent": "", "level": 1, "confidence": 80.0}],
        "model_version": "7.0",
        "content_types": [],
        "min_confidence": 40.0,
        "human_loop_arn": None,
    }

    def previous_release(conn: Connection) -> None:
        detections = Table("detections", MetaData(), autoload_with=conn)
        conn.execute(
            insert(detections).values(
                sha256="h" * 64, result=result, min_confidence=40.0, created_at=time.time()
            )
        )

    await _sync(url, previous_release)
    store = Store.from_url(url)
    try:
        await store.upgrade()
        assert await _sync(url, _differences) == []
        stored = await store.detection("h" * 64, "rekognition")
        assert stored is not None
        assert (stored.model_version, stored.min_confidence) == ("7.0", 40.0)
        assert stored.labels[0].name == "Violence"
        assert await store.detection("h" * 64, "nudenet") is None
        local = Detection(labels=(), model_version="nudenet-3.4", min_confidence=40.0)
        await store.save_detection("h" * 64, "nudenet", local)
        assert await store.detection("h" * 64, "nudenet") == local
        assert await store.detection("h" * 64, "rekognition") == stored

        def versions(conn: Connection) -> dict[str, str]:
            detections = Table("detections", MetaData(), autoload_with=conn)
            rows = conn.execute(select(detections.c.detector, detections.c.model_version))
            return {row.detector: row.model_version for row in rows}

        assert await _sync(url, versions) == {"rekognition": "7.0", "nudenet": "nudenet-3.4"}
    finally:
        await store.close()
