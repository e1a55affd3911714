"""The results database."""
from bptt.store.database import STATUSES, Database, RunRow

__all__ = ["STATUSES", "Database", "RunRow"]
