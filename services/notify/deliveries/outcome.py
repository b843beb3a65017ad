"""What one attempt came to: the row of the delivery log, and whether trying again can help."""

from __future__ import annotations

from dataclasses import dataclass

MAX_ERROR_CHARS = 500


def short_error(text: str) -> str:
    """One line, at most MAX_ERROR_CHARS: what the delivery log shows."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


@dataclass(frozen=True)
class Outcome:
    """One webhook call or SMTP send: status code, how long it took, and the error if any."""

    ok: bool
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    permanent: bool = False  # a retry cannot help (SMTP 5xx, no SMTP configured): fail at once

    @classmethod
    def failure(
        cls,
        error: str,
        *,
        duration_ms: int = 0,
        status_code: int | None = None,
        permanent: bool = False,
    ) -> Outcome:
        return cls(
            ok=False,
            duration_ms=duration_ms,
            status_code=status_code,
            error=short_error(error),
            permanent=permanent,
        )
