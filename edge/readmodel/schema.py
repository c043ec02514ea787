"""The read model's tables: one row per job, a tracking row per edge, and the fold's counters.

Queue and history order come from the events' own times (`queued_ms`, `finished_ms`), which every edge
reads identically from the log, so any edge pages the same history.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    and_,
    false,
)

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("job_type", String(64)),
    Column("stage", String(16), nullable=False),
    Column("progress", SmallInteger, nullable=False),
    Column("status", Text),
    Column("images", JSON, nullable=False),  # OutputImage objects
    Column("seeds", JSON, nullable=False),
    Column("require_base64", Boolean, nullable=False),
    Column("webhook_url", Text),
    Column("queued_ms", BigInteger),
    Column("started_ms", BigInteger),
    Column("finished_ms", BigInteger),
    Column("outcome", String(32)),  # the terminal event's type; NULL while unfinished
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("input_keys", JSON, nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    Column("idempotency_key", String(64)),
    Column("request_digest", String(64)),
    Column("webhooks", JSON, nullable=False),  # the delivery log: WebhookAttempted objects
    Column("last_seq", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False),  # a tombstone: later events of the job change nothing
)

# The same expressions serve the partial indexes and the queries, so both databases use the indexes.
UNFINISHED = and_(jobs.c.outcome.is_(None), jobs.c.queued_ms.is_not(None), jobs.c.deleted == false())
FINISHED = and_(jobs.c.outcome.is_not(None), jobs.c.deleted == false())

Index(
    "jobs_unfinished", jobs.c.queued_ms, jobs.c.job_id, sqlite_where=UNFINISHED, postgresql_where=UNFINISHED
)
Index("jobs_history", jobs.c.finished_ms, jobs.c.job_id, sqlite_where=FINISHED, postgresql_where=FINISHED)
Index("jobs_queued", jobs.c.queued_ms, jobs.c.job_id)
Index(
    "jobs_idempotency",
    jobs.c.idempotency_key,
    jobs.c.queued_ms,
    sqlite_where=jobs.c.idempotency_key.is_not(None),
    postgresql_where=jobs.c.idempotency_key.is_not(None),
)

# Each edge's position in one log: the last offset it folded, written in the same transaction as the fold.
tracking = Table(
    "tracking",
    metadata,
    Column("log", String(128), primary_key=True),
    Column("reader", String(128), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# Named numbers. The `finished` row is also the fold's lock: every fold updates it first, so folds from
# several edges into one database take turns instead of racing on the same jobs.
counters = Table(
    "counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
FINISHED_COUNT = "finished"
