"""The store (SQLAlchemy): offline path and persistence. Not imported by ``bayes_mem.live``."""

from bayes_mem.store.ingest import IngestError, Problem
from bayes_mem.store.persistent_decider import PersistentDecider
from bayes_mem.store.recorder import StoreRecorder
from bayes_mem.store.schema import SCHEMA_VERSION, SchemaError
from bayes_mem.store.store import DuplicateTradeError, Store  # DuplicateTradeError: live's
from bayes_mem.store.writer import (
    DecisionQueueFull,
    DecisionWriteError,
    DecisionWriter,
    DecisionWriterClosed,
    WriterStats,
)

__all__ = [
    "SCHEMA_VERSION",
    "DecisionQueueFull",
    "DecisionWriteError",
    "DecisionWriter",
    "DecisionWriterClosed",
    "DuplicateTradeError",
    "IngestError",
    "PersistentDecider",
    "Problem",
    "SchemaError",
    "Store",
    "StoreRecorder",
    "WriterStats",
]
