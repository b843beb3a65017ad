"""The rules engine: a declarative ruleset (YAML + CEL) judges each department.

The engine's per-judgement modules run compiled by mypyc when `make native` built them from the
current sources, and as Python otherwise (`native.py`): decided here, before any is imported.
"""

from services.rules import native

native.choose()
