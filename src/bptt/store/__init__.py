"""The results database and the records it holds (``export`` writes its runs as CSV or Parquet)."""
from bptt.store.database import STATUSES, Database
from bptt.store.records import EvalRow, ProfileRow, RunRow, RunSummary, StepRow, controlled_length

__all__ = ["STATUSES", "Database", "EvalRow", "ProfileRow", "RunRow", "RunSummary", "StepRow", "controlled_length"]
