"""The results database and the records it holds (``schema``: its tables and the checks a file passes before
it is opened; ``export`` writes its runs as CSV or Parquet)."""

from bptt.store.database import STATUSES, Database
from bptt.store.records import EvalRow, ProfileRow, RunRow, RunSummary, StepRow, controlled_length
from bptt.store.schema import DatabaseError

__all__ = [
    "STATUSES",
    "Database",
    "DatabaseError",
    "EvalRow",
    "ProfileRow",
    "RunRow",
    "RunSummary",
    "StepRow",
    "controlled_length",
]
