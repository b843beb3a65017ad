"""Use cases of the operator: organisations, departments, API keys and users.

They take the session first, validate everything before they write, and never commit: the CLI (or
an API handler) owns the transaction, so a refused input changes nothing.
"""
