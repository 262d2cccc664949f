"""Database tables (SQLAlchemy Core), kept portable so PostgreSQL can be added without rewrites."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# One row per image to scan. Written before Slack gets its ack, so accepted work survives a crash.
scans = Table(
    "scans",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("dedup_key", String(512), nullable=False, unique=True),
    Column("request", JSON, nullable=False),  # the ScanRequest, serialised
    Column("status", String(16), nullable=False, index=True),  # pending | done | failed
    Column("sha256", String(64), index=True),
    Column("decision", String(16)),
    Column("mode", String(16)),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # The image's PDQ hash (64 hex digits) and quality, stored as soon as it is computed, so
    # the verdict on this scan can enter the hash bank (see hash_bank below).
    Column("pdq", String(64)),
    Column("pdq_quality", Integer),
    Column("pdq_inner", String(64)),  # the hash inside uniform borders, if it has any
)
Index("scans_age", scans.c.updated_at)  # a finished scan's age counts from its end

# Detector results by image content and detector: the same bytes are never sent (and paid for)
# twice to one detector, and one detector never reuses another's results.
detections = Table(
    "detections",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("detector", String(32), primary_key=True),  # "rekognition", ...
    Column("model_version", String(64), nullable=False),  # the detector's model that made it
    Column("result", JSON, nullable=False),
    Column("min_confidence", Float, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("detections_age", detections.c.created_at)  # retention deletes the oldest first

alerts = Table(
    "alerts",
    metadata,
    Column("scan_id", String(32), primary_key=True),
    Column("sha256", String(64), nullable=False, index=True),
    Column("channel", String(32), nullable=False),
    # NULL while the alert is being posted: an intent recorded first, so a crash between
    # posting and saving is recognised at restart (see Pipeline._post_alert).
    Column("ts", String(32)),
    Column("permalink", Text),
    Column("decision", String(16), nullable=False),
    Column("message", JSON),  # text and blocks as posted, so a verdict can update the alert
    Column("created_at", Float, nullable=False),
    # The label names that made the decision: a "violation" vote confirms these labels.
    Column("causes", JSON),
)

# Slack event ids already taken in: a redelivery (X-Slack-Retry-Num) produces nothing new.
events = Table(
    "events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("received_at", Float, nullable=False),
)
Index("events_age", events.c.received_at)

reviews = Table(
    "reviews",
    metadata,
    Column("scan_id", String(32), primary_key=True),
    Column("sha256", String(64), nullable=False, index=True),
    Column("backend", String(16), nullable=False),
    Column("status", String(16), nullable=False, index=True),  # open | decided | failed
    Column("loop_name", String(64), unique=True),
    Column("violation", Boolean),
    Column("labels", JSON),
    Column("decided_by", JSON),
    Column("detail", Text),
    # The verdict (or failure) still has to be told in Slack: an outbox that survives restarts.
    Column("reported", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("decided_at", Float),
    Column("reminded_at", Float),
)

votes = Table(
    "votes",
    metadata,
    Column("scan_id", String(32), primary_key=True),
    Column("user", String(32), primary_key=True),
    Column("violation", Boolean, nullable=False),
    Column("at", Float, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("scan_id", String(32)),
    Column("action", String(32), nullable=False),
    Column("actor", String(64)),
    Column("detail", JSON),
)
Index("audit_scan", audit.c.scan_id)

# A review's outcome reply (verdict or failure) about to be posted: written before posting, so
# after a crash between posting and marking the review reported, the thread is searched first.
review_replies = Table(
    "review_replies",
    metadata,
    Column("scan_id", String(32), primary_key=True),
    Column("begun_at", Float, nullable=False),
)

# How each unfinished scan has fared so far (a table of its own: `scans` keeps its columns, so
# deployed databases need no migration). A row exists only while the scan is pending.
scan_runs = Table(
    "scan_runs",
    metadata,
    Column("scan_id", String(32), primary_key=True),
    # Starts with no recorded end: counted before the work, so a scan that takes the process
    # down with it is recognised at the next start instead of crashing it again and again.
    Column("unfinished", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),  # transient failures so far
    Column("first_failure_at", Float),  # when retrying began: the retry limit counts from here
    Column("bugs", Integer, nullable=False, default=0),  # unexpected exceptions so far
    # The lease: which worker process holds the scan, and until when (an expired lease is
    # claimable again), and the retry clock (not to be run again before this).
    Column("holder", String(64)),
    Column("lease_until", Float),
    Column("not_before", Float),
)

# The deployment's shared Rekognition schedule (PostgreSQL; see bot/adapters/database/quota.py):
# one row per quota, locked for the moment a replica claims its next send slots. Times are
# seconds on the database server's clock.
rate_gates = Table(
    "rate_gates",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("rate", Float, nullable=False),  # after throttling (AIMD), at most the quota
    Column("last_slot", Float, nullable=False),
    Column("last_decrease", Float, nullable=False),
)

# Removals (PRODUCT §10): one per scan, the intent written before any Slack call, so an image is
# deleted at most once and never forgotten across restarts. The row is also the outbox for what
# follows (the thread reply, the alert update, the poster's direct message).
removals = Table(
    "removals",
    metadata,
    Column("scan_id", String(32), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # file (files.delete) | message (chat.delete)
    Column("channel", String(32)),
    Column("file_id", String(32)),
    Column("message_ts", String(32)),
    Column("poster", String(32)),
    Column("source", Text),  # the file name or link, for the messages
    Column("labels", JSON),
    Column("why", String(16), nullable=False),  # verdict | flag | repost | button
    Column("actor", String(64)),  # the reviewer who pressed Remove; NULL: the policy
    Column("status", String(16), nullable=False, index=True),  # pending | removed | failed
    Column("detail", Text),
    # Set just before the first delete call: after a crash the object is looked up first.
    Column("called_at", Float),
    Column("failures", Integer, nullable=False, default=0),
    Column("first_failure_at", Float),
    Column("not_before", Float),
    Column("reply_begun_at", Float),  # the Removed / Could not remove reply, as for verdicts
    Column("reported", Boolean, nullable=False, default=False),
    # The poster's direct message: NULL (not wanted) | due | sent | failed.
    Column("notice", String(16)),
    Column("notice_begun_at", Float),
    Column("created_at", Float, nullable=False),
    Column("done_at", Float),
)

# Appeals: one per removal; an open appeal is a review voted on in the alert's thread.
appeals = Table(
    "appeals",
    metadata,
    Column("scan_id", String(32), primary_key=True),
    Column("user", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),  # open | upheld | overturned
    Column("post_begun_at", Float),  # the "Appeal from" thread post: intent, then ts
    Column("post_ts", String(32)),
    Column("decided_by", JSON),
    Column("report_begun_at", Float),
    Column("reported", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("decided_at", Float),
)

appeal_votes = Table(
    "appeal_votes",
    metadata,
    Column("scan_id", String(32), primary_key=True),
    Column("user", String(32), primary_key=True),
    Column("upheld", Boolean, nullable=False),
    Column("at", Float, nullable=False),
)

# The hash bank (PRODUCT §11): one row per human verdict on a hashed image, written in the
# verdict's own transaction (bot/adapters/database/reviews.py), and rows imported from another
# deployment. Rows are only ever added, or deleted when a verdict is withdrawn (an overturned
# appeal): every replica follows both by id (hash_bank.id, bank_withdrawals.id). Not subject
# to retention: the bank is the record.
hash_bank = Table(
    "hash_bank",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pdq", String(64), nullable=False),
    Column("quality", Integer, nullable=False),
    # The hash of the picture inside uniform borders (bot/adapters/images/pdq.py), matched as
    # well; NULL when it has none, and for imported rows (the CSV carries `pdq` only).
    Column("pdq_inner", String(64)),
    Column("violation", Boolean, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("scan_id", String(32), index=True),  # NULL for imported rows
    Column("sha256", String(64), index=True),
    # HMA push (MODBOT_HMA_PUSH_BANK): NULL = not yet; a time = claimed or done by a replica.
    Column("pushed_at", Float),
)

bank_withdrawals = Table(
    "bank_withdrawals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entry_id", Integer, nullable=False),
    Column("at", Float, nullable=False),
)

# Leases on work other than scans (a verdict to report, a reminder due, an A2I loop's end, a
# detector call for some bytes): taken by one replica, renewed while it works, claimable again
# once expired. Rows exist only while the work is in hand.
leases = Table(
    "leases",
    metadata,
    Column("name", String(160), primary_key=True),  # "<kind>:<key>", e.g. "report:<scan id>"
    Column("holder", String(64), nullable=False),
    Column("until", Float, nullable=False),
)
Index("leases_holder", leases.c.holder)  # the heartbeat renews one holder's leases

# The replicas working this database, and the policy each runs (a fingerprint), so a replica
# started with a different policy is noticed. seen_at is renewed with the leases.
replicas = Table(
    "replicas",
    metadata,
    Column("holder", String(64), primary_key=True),
    Column("policy", String(64), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("seen_at", Float, nullable=False),
)
