"""The store (SQLAlchemy): offline path and persistence. Not imported by ``bayes_mem.live``."""

from bayes_mem.store.ingest import IngestError, Problem
from bayes_mem.store.persistent_decider import PersistentDecider
from bayes_mem.store.schema import SCHEMA_VERSION, SchemaError
from bayes_mem.store.store import DuplicateTradeError, Store

__all__ = [
    "SCHEMA_VERSION",
    "DuplicateTradeError",
    "IngestError",
    "PersistentDecider",
    "Problem",
    "SchemaError",
    "Store",
]
