"""The ingest service: signals in over REST, signed webhooks and CSV; departments for senders."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """The ingest routes, for whichever process serves them (`up` or `ingest`)."""
    from services.ingest import api, departments_api

    return [api.router, departments_api.router]
