"""Errors a user can act on: the message says what is wrong, in one line, and nothing changed."""

from __future__ import annotations


class InvalidInput(Exception):
    """Bad input from a person or a file; the CLI prints it and exits 2, the API answers 4xx."""


class NotFound(InvalidInput):
    """Something named in the input does not exist (an unknown region, AGB code, care type)."""


class Conflict(InvalidInput):
    """The input collides with what is there (a duplicate department code, a second key)."""


class Forbidden(InvalidInput):
    """The caller may not do this: another organisation's department, a role that may not act."""
