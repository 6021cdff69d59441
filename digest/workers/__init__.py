"""Sending on a fleet of Celery workers, the ledger as the truth.

With ``workers: {broker: ...}`` in schedules.yaml, ``digest run NAME`` builds and
records the issue (its ledger rows queued, as always), then publishes one
``digest.send`` task per ``workers.batch`` rows; ``digest worker`` processes, on as
many machines as wanted, run them. A task carries the issue's id, never a message or
an address: it sends through ``digest.dispatch.send_issue`` whatever rows of the issue
are still queued and held by nobody alive, up to its share, so a task the broker
delivers twice (``acks_late``: a worker killed mid-task leaves its message unacked, and
``reject_on_worker_lost`` sends it back) sends only what is still unsent. What went out
is known from the ledger alone (``digest status NAME``). Tasks a broker lost (one
restarted without persistence) are published again by the waiting ``run`` once nothing
moves, nobody holds a row and the queue is empty (``workers.republish_after``).
"""

from .app import make_app, publish, waiting

__all__ = ["make_app", "publish", "waiting"]
