"""What a request handler takes from the app: the session factory its lifespan made."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


def sessions_of(request: Request) -> async_sessionmaker[AsyncSession]:
    """The app's session factory (typed: `app.state` is not)."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions
