"""The edge's read side: job views folded from the event log into a database, live progress in memory."""

from edge.readmodel.database import async_url
from edge.readmodel.store import HistoryPage, QueueCounts, ReadModel
from edge.readmodel.views import JobView, Stage

__all__ = ["HistoryPage", "JobView", "QueueCounts", "ReadModel", "Stage", "async_url"]
