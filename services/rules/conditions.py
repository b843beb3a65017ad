"""Rule conditions as closures over the figures: the common part of CEL, without the `cel` package.

Handing figures to the `cel` package costs about 2 µs per figure (each is converted into a CEL
value), more than a whole condition, and an evaluation would pay it for every figure a rule might
read (docs/benchmarks.md, "Rules"). So the part of CEL that rulesets keep to is compiled a second
time, into closures over the plain dicts of `state.figures`: figures (`staffing.sick_leave_pct`),
`has()`, double, string and bool literals, `==`, `!=`, `<`, `<=`, `>`, `>=`, `+`, `-`, `*`, `/`,
unary `!` and `-`, `&&`, `||` and parentheses. An expression with anything else (integers,
functions, macros, lists, `in`, `?:`, …) gets no closure and runs as the CEL program only.

The closures give the CEL program's answer, as the `cel` package computes it: a missing figure is
an error; `&&` and `||` absorb errors from either side (`false && error` is false, `error || true`
is true); an error anywhere else makes the whole an error; a condition holds only when it is
`true`. For a value whose answer they are not sure of (a type other than the doubles, strings and
bools that `figures` gives, values of two types compared, NaN ordered, a division by zero) they
raise `Unsure`, and the caller runs the CEL program instead. tests/rules/test_evaluate.py holds
the closures to the programs' answers over the default ruleset and a list of awkward expressions.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any, ClassVar, Final, TypeAlias

import cel


class Unsure(Exception):
    """The closures cannot give CEL's exact answer for these values: ask the CEL program."""


class CelError:
    """A CEL error as a value: a missing figure, or an operation on the wrong types."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CelError"


ERROR: Final = CelError()
Value: TypeAlias = float | str | bool | CelError
# The figures as `state.figures` makes them: a dict, so that compiled (native.py) a lookup is
# a dict lookup, not a call of a `Mapping` method.
Condition: TypeAlias = Callable[[dict[str, Any]], Value]

_TOKEN = re.compile(
    r"[ \t\r\n\f]*(?:"
    r"(?P<number>[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?)(?![A-Za-z0-9_.])"
    r"|(?P<string>\"[^\"\\\r\n]*\"|'[^'\\\r\n]*')"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>&&|\|\||<=|>=|==|!=|[<>!()+\-*/.])"
    r")"
)
_RESERVED = frozenset(
    {
        *("as", "break", "const", "continue", "else", "false", "for", "function", "has", "if"),
        *("import", "in", "let", "loop", "namespace", "null", "package", "return", "true"),
        *("var", "void", "while"),
    }
)
_RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
_PLAIN: Final = frozenset({float, str, bool})  # the types of the values `state.figures` gives

# The parsed expression, as tuples: ("literal", value), ("figure", group, name),
# ("has", group, name), ("relation", op, left, right), ("arithmetic", op, left, right),
# ("negate", inner), ("not", inner), ("and", left, right), ("or", left, right).
Node: TypeAlias = tuple[Any, ...]


class _NotSubset(Exception):
    """The expression uses more of CEL than the closures do."""


def compile_condition(program: cel.Program | None) -> Condition | None:
    """The program as closures over the figures; None if it uses more of CEL than they do."""
    if program is None:
        return None
    tokens: list[tuple[str, str]] = []
    source, at = program.source, 0
    while True:
        match = _TOKEN.match(source, at)
        if match is None:
            if source[at:].strip(" \t\r\n\f"):
                return None  # something the closures do not know: `[`, `?`, `%`, `//`, `1`, …
            break
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        at = match.end()
    try:
        return _emit(_Parser(tokens).parse())
    except (_NotSubset, RecursionError):
        return None


class _Parser:
    """Recursive descent with CEL's precedence: `||` < `&&` < relations < `+ -` < `* /` < unary."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def parse(self) -> Node:
        node = self._binary(0)
        if self.at != len(self.tokens):
            raise _NotSubset
        return node

    _LEVELS: ClassVar[tuple[tuple[str, tuple[str, ...]], ...]] = (
        ("or", ("||",)),
        ("and", ("&&",)),
        ("relation", tuple(_RELATIONS)),
        ("arithmetic", ("+", "-")),
        ("arithmetic", ("*", "/")),
    )

    def _op(self) -> str | None:
        if self.at < len(self.tokens) and self.tokens[self.at][0] == "op":
            return self.tokens[self.at][1]
        return None

    def _binary(self, level: int) -> Node:
        """Left-associative operators of one precedence level (CEL's grammar is the same)."""
        if level == len(self._LEVELS):
            return self._unary()
        kind, ops = self._LEVELS[level]
        node = self._binary(level + 1)
        while (op := self._op()) in ops:
            self.at += 1
            right = self._binary(level + 1)
            node = (kind, node, right) if kind in ("or", "and") else (kind, op, node, right)
        return node

    def _unary(self) -> Node:
        op = self._op()
        if op in ("!", "-"):
            self.at += 1
            return ("not" if op == "!" else "negate", self._unary())
        return self._primary()

    def _take(self, kind: str, text: str | None = None) -> str:
        if self.at >= len(self.tokens):
            raise _NotSubset
        found_kind, found = self.tokens[self.at]
        if found_kind != kind or (text is not None and found != text):
            raise _NotSubset
        self.at += 1
        return found

    def _primary(self) -> Node:
        if self.at >= len(self.tokens):
            raise _NotSubset
        kind, text = self.tokens[self.at]
        if kind == "number":
            self.at += 1
            return ("literal", float(text))
        if kind == "string":
            self.at += 1
            return ("literal", text[1:-1])
        if kind == "op" and text == "(":
            self.at += 1
            node = self._binary(0)
            self._take("op", ")")
            return node
        if kind == "name" and text in ("true", "false"):
            self.at += 1
            return ("literal", text == "true")
        if kind == "name" and text == "has":
            self.at += 1
            self._take("op", "(")
            group, name = self._figure()
            self._take("op", ")")
            return ("has", group, name)
        return ("figure", *self._figure())

    def _figure(self) -> tuple[str, str]:
        """`group.figure` and nothing deeper: not `a.b.c`, not a method call, not `a` alone."""
        group = self._take("name")
        self._take("op", ".")
        name = self._take("name")
        if group in _RESERVED or name in _RESERVED or self._op() in (".", "("):
            raise _NotSubset
        return group, name


# --- closures ------------------------------------------------------------------------------------


def _group(seen: dict[str, Any], name: str) -> dict[str, Any]:
    group = seen.get(name)
    if type(group) is not dict:
        raise Unsure  # `figures` always gives each group as a dict; anything else: ask CEL
    return group


def _emit(node: Node) -> Condition:
    kind = node[0]
    if kind == "literal":
        value = node[1]
        return lambda seen: value
    if kind == "figure":
        return _figure(node[1], node[2])
    if kind == "has":
        group, name = node[1], node[2]
        return lambda seen: name in _group(seen, group)
    if kind == "relation":
        return _relation(node[1], node[2], node[3])
    if kind == "arithmetic":
        return _arithmetic(node[1], _emit(node[2]), _emit(node[3]))
    if kind == "negate":
        return _negate(_emit(node[1]))
    if kind == "not":
        return _not(_emit(node[1]))
    if kind == "and":
        return _conjunction(_flatten("and", node))
    return _disjunction([_emit(part) for part in _flatten("or", node)])


def _flatten(kind: str, node: Node) -> list[Node]:
    """`a && b && c` as [a, b, c]: the same answer however CEL groups it (errors are absorbed
    by `false` from any side, so the result does not depend on the grouping)."""
    if node[0] != kind:
        return [node]
    return _flatten(kind, node[1]) + _flatten(kind, node[2])


def _figure(group: str, name: str) -> Condition:
    def figure(seen: dict[str, Any]) -> Value:
        value = _group(seen, group).get(name, ERROR)
        if value is ERROR or type(value) in _PLAIN:
            return value  # type: ignore[no-any-return]
        raise Unsure

    return figure


def _checked(a: Value, b: Value, ordering: bool) -> None:
    """Values CEL compares as Python does: one type of the three, and no NaN to order."""
    kind = type(a)
    if kind is not type(b) or kind not in _PLAIN:
        raise Unsure
    if ordering and kind is float and (a != a or b != b):
        raise Unsure  # CEL refuses to order NaN


def _relation(op: str, left: Node, right: Node) -> Condition:
    compare = _RELATIONS[op]
    ordering = op not in ("==", "!=")
    first, second = _emit(left), _emit(right)

    def relation(seen: dict[str, Any]) -> Value:
        a, b = first(seen), second(seen)
        if a is ERROR or b is ERROR:
            return ERROR
        _checked(a, b, ordering)
        return compare(a, b)

    return relation


def _arithmetic(op: str, first: Condition, second: Condition) -> Condition:
    compute = _ARITHMETIC[op]
    divide = op == "/"

    def arithmetic(seen: dict[str, Any]) -> Value:
        a, b = first(seen), second(seen)
        if a is ERROR or b is ERROR:
            return ERROR
        if type(a) is not float or type(b) is not float or (divide and b == 0.0):
            raise Unsure  # CEL divides by zero into inf or NaN; Python raises
        return compute(a, b)

    return arithmetic


def _negate(inner: Condition) -> Condition:
    def negate(seen: dict[str, Any]) -> Value:
        a = inner(seen)
        if a is ERROR:
            return ERROR
        if type(a) is not float:
            raise Unsure
        return -a

    return negate


def _not(inner: Condition) -> Condition:
    def negation(seen: dict[str, Any]) -> Value:
        a = inner(seen)
        if a is True or a is False:
            return not a
        if a is ERROR:
            return ERROR
        raise Unsure

    return negation


def _conjunction(parts: list[Node]) -> Condition:
    """`&&` over all parts: false if any is false, true if all are true, else an error.

    The usual parts are checked in place, without a call each: `has(g.f)` guards first (a
    missing figure makes the whole false at once), then comparisons of a figure with a literal.
    """
    guards = [(part[1], part[2]) for part in parts if part[0] == "has"]
    tests = []
    pairs = []
    others = []
    for part in parts:
        if part[0] == "has":
            continue
        if part[0] == "relation" and part[2][0] == "figure" and part[3][0] == "literal":
            op, (_, group, name), (_, constant) = part[1], part[2], part[3]
            ordering = op not in ("==", "!=")
            tests.append((group, name, _RELATIONS[op], constant, type(constant), ordering))
        elif part[0] == "relation" and part[2][0] == "figure" and part[3][0] == "figure":
            op, (_, group, name), (_, other_group, other) = part[1], part[2], part[3]
            pairs.append((group, name, _RELATIONS[op], other_group, other, op not in ("==", "!=")))
        else:
            others.append(_emit(part))

    if (
        len(guards) == 1
        and len(tests) == 1
        and not others
        and not pairs
        and guards[0] == tests[0][:2]
    ):
        return _guarded(*tests[0])

    def conjunction(seen: dict[str, Any]) -> Value:
        # `_group` inlined: this runs for most rules at every evaluation.
        for group_name, name in guards:
            group = seen.get(group_name)
            if type(group) is not dict:
                raise Unsure
            if name not in group:
                return False
        failed = False
        for group_name, name, compare, constant, kind, ordering in tests:
            group = seen.get(group_name)
            if type(group) is not dict:
                raise Unsure
            a = group.get(name, ERROR)
            if a is ERROR:
                failed = True
                continue
            if type(a) is not kind or (ordering and kind is float and a != a):
                raise Unsure
            if not compare(a, constant):
                return False
        for group_name, name, compare, other_group, other_name, ordering in pairs:
            group, other_values = seen.get(group_name), seen.get(other_group)
            if type(group) is not dict or type(other_values) is not dict:
                raise Unsure
            a, b = group.get(name, ERROR), other_values.get(other_name, ERROR)
            if a is ERROR or b is ERROR:
                failed = True
                continue
            _checked(a, b, ordering)
            if not compare(a, b):
                return False
        for other in others:
            value = other(seen)
            if value is False:
                return False
            if value is not True:
                failed = True
        return ERROR if failed else True

    return conjunction


def _guarded(
    group_name: str,
    name: str,
    compare: Callable[[Any, Any], bool],
    constant: float | str | bool,
    kind: type,
    ordering: bool,
) -> Condition:
    """`has(g.f) && g.f <op> literal`, the most common condition, in one step."""

    def guarded(seen: dict[str, Any]) -> Value:
        group = seen.get(group_name)
        if type(group) is not dict:
            raise Unsure
        a = group.get(name, ERROR)
        if a is ERROR:
            return False  # not reported: `has` is false, and so is the whole
        if type(a) is not kind or (ordering and kind is float and a != a):
            raise Unsure
        return compare(a, constant)

    return guarded


def _disjunction(parts: list[Condition]) -> Condition:
    """`||` over all parts: true if any is true, false if all are false, else an error."""

    def disjunction(seen: dict[str, Any]) -> Value:
        failed = False
        for part in parts:
            value = part(seen)
            if value is True:
                return True
            if value is not False:
                failed = True
        return ERROR if failed else False

    return disjunction
