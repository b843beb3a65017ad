"""The monthly escalation digest for the governance board (bestuurlijk overleg cruciale ggz).

What the notifier's composition root takes from here (docs/digest.md):
- `routers`: `GET /v1/digests` and `GET /v1/digests/{period}[.json|.html|.pdf]`;
- `digest_background(settings, cron=..., long_open_days=..., clock=...)`: the monthly job as a
  background context for `create_app` (APScheduler; catches up at start-up);
- `make_digest`: the use case the job and `vroegsignaal digest` share.

Modules: `period` (months and their bounds), `rows` (the reads), `figures` (the pure counting)
into a `document` (the typed JSON), `charts`, `render` (HTML and PDF), `mail`, `make` (store,
publish, deliver, exactly once), `schedule`, `api`, `access` (who may read).
"""

from fastapi import APIRouter

from services.notify.digest.access import READERS, may_read_digests
from services.notify.digest.api import router as _router
from services.notify.digest.make import (
    DigestOptions,
    DigestResult,
    Outcome,
    make_digest,
)
from services.notify.digest.period import Period
from services.notify.digest.schedule import (
    DEFAULT_CRON,
    DigestJob,
    digest_background,
    digest_schedule,
)

routers: list[APIRouter] = [_router]

__all__ = [
    "DEFAULT_CRON",
    "READERS",
    "DigestJob",
    "DigestOptions",
    "DigestResult",
    "Outcome",
    "Period",
    "digest_background",
    "digest_schedule",
    "make_digest",
    "may_read_digests",
    "routers",
]
