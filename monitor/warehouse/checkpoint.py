"""``DataFrame.localCheckpoint`` that stays in the DataFrame's own session on Spark Connect.

The Connect client (pyspark 4.0-4.1 at least) binds the checkpointed DataFrame to
``SparkSession.active()``, the thread's active or else the process's default session, not to the
session that made it. A process with two Connect sessions (a Spark source and the warehouse each
open one) then sends the next query over the checkpoint to the other session, which fails with
``CONNECT_INVALID_PLAN.DATAFRAME_NOT_FOUND``; the warehouse's writes also run in the store's writer
thread, whose active session is not the caller's. So the DataFrame's session is made the active
one of this thread for the call. A classic session is left as it is.
"""
from __future__ import annotations


def local_checkpoint(frame):
    """``frame.localCheckpoint(eager=True)``, bound to ``frame``'s session."""
    session = frame.sparkSession
    active = getattr(type(session), "_active_session", None)  # Connect: a threading.local
    if not type(session).__module__.startswith("pyspark.sql.connect") or active is None:
        return frame.localCheckpoint(eager=True)
    before = getattr(active, "session", None)
    active.session = session
    try:
        return frame.localCheckpoint(eager=True)
    finally:
        active.session = before
