"""Explanations: a rule's sentence with the figures filled in, in Dutch or English.

`{waitlist.behandelwachttijd_weeks}` puts in a figure, `{value:.1f}` a number with a format. Dutch
text gets a decimal comma (`8,5`), as its readers write numbers. A figure that is missing shows as
a dash rather than breaking the sentence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_FIELD = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)(?::([^}]*))?\}")


def lookup(values: Mapping[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _format(value: Any, spec: str | None, language: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return ("ja" if value else "nee") if language == "nl" else ("yes" if value else "no")
    if isinstance(value, float):
        text = (
            format(value, spec)
            if spec
            else (f"{value:.0f}" if value.is_integer() else f"{value:g}")
        )
    else:
        text = format(value, spec) if spec else str(value)
    return text.replace(".", ",") if language == "nl" and isinstance(value, float) else text


def render(template: str, values: Mapping[str, Any], language: str) -> str:
    """The template with each `{name}` or `{name:spec}` replaced by its value."""
    return _FIELD.sub(lambda m: _format(lookup(values, m.group(1)), m.group(2), language), template)


# A template parsed once: text, or a figure's path and its format.
Template = tuple[str | tuple[tuple[str, ...], str | None], ...]


def compile_template(template: str) -> Template:
    """The template in pieces, so that rendering it is a join, not a regular expression."""
    pieces: list[str | tuple[tuple[str, ...], str | None]] = []
    at = 0
    for match in _FIELD.finditer(template):
        if match.start() > at:
            pieces.append(template[at : match.start()])
        pieces.append((tuple(match.group(1).split(".")), match.group(2)))
        at = match.end()
    if at < len(template):
        pieces.append(template[at:])
    return tuple(pieces)


def render_template(
    template: Template, first: Mapping[str, Any], then: Mapping[str, Any], language: str
) -> str:
    """As `render` over `{**then, **first}`, without building that dict."""
    out = []
    for piece in template:
        if isinstance(piece, str):
            out.append(piece)
            continue
        path, spec = piece
        head = path[0]
        node: Any = first[head] if head in first else then.get(head)
        for part in path[1:]:
            if not isinstance(node, Mapping) or part not in node:
                node = None
                break
            node = node[part]
        out.append(_format(node, spec, language))
    return "".join(out)
