"""Reading YAML files that people write, so that every problem can be reported with its line.

The ruleset, the escalation policy and the rule cases are YAML a domain expert edits. pydantic
says where a value is wrong by its path (`("rules", 3, "when")`); `LineIndex` turns that path into
the line of the file, and `yaml_error_line` does the same for a file that is not YAML at all.
`read_text` and `parse_yaml` are the two steps every such loader takes first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from services.core.errors import InvalidInput


def read_text(path: Path, what: str) -> str:
    """The file's text; `InvalidInput` saying which `what` could not be read, and why."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def parse_yaml(text: str) -> tuple[Any, LineIndex]:
    """The document and the lines of its nodes; raises `yaml.YAMLError` when it is not YAML."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    document = yaml.safe_load(text)
    return document, LineIndex(root)


def yaml_error_line(exc: yaml.YAMLError) -> int | None:
    """The line (from 1) where the parser gave up, when it says."""
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else None


class LineIndex:
    """Line numbers of the YAML nodes, by path (`("rules", 3, "when")`)."""

    def __init__(self, root: yaml.Node | None) -> None:
        self._root = root

    def line(self, path: tuple[Any, ...]) -> int | None:
        """The line of the node at `path`, or of the nearest node above it that exists."""
        node = self._root
        last_line = node.start_mark.line + 1 if node is not None else None
        for step in path:
            if isinstance(node, yaml.MappingNode):
                match = next(
                    ((k, v) for k, v in node.value if getattr(k, "value", None) == str(step)),
                    None,
                )
                if match is None:
                    return last_line
                node = match[1]
                last_line = match[0].start_mark.line + 1
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                if step >= len(node.value):
                    return last_line
                node = node.value[step]
                last_line = node.start_mark.line + 1
            else:
                return last_line
        return last_line
