"""Rule conditions over the figures in plain Python: the common part of CEL, without `cel`.

Handing figures to the `cel` package costs about 2 µs per figure (each is converted into a CEL
value), more than a whole condition, and an evaluation would pay it for every figure a rule might
read (docs/benchmarks.md, "Rules"). So the part of CEL that rulesets keep to is compiled a second
time, into objects over the plain dicts of `state.figures`: figures (`staffing.sick_leave_pct`),
`has()`, double, string and bool literals, `==`, `!=`, `<`, `<=`, `>`, `>=`, `+`, `-`, `*`, `/`,
unary `!` and `-`, `&&`, `||` and parentheses. An expression with anything else (integers,
functions, macros, lists, `in`, `?:`, …) is not compiled here and runs as the CEL program only.

These give the CEL program's answer, as the `cel` package computes it: a missing figure is
an error; `&&` and `||` absorb errors from either side (`false && error` is false, `error || true`
is true); an error anywhere else makes the whole an error; a condition holds only when it is
`true`. For a value whose answer they are not sure of (a type other than the doubles, strings and
bools that `figures` gives, values of two types compared, NaN ordered, a division by zero) they
raise `Unsure`, and the caller runs the CEL program instead. tests/rules/test_evaluate.py holds
them to the programs' answers over the default ruleset and a list of awkward expressions.
"""

from __future__ import annotations

import re
import sys
from typing import Any, ClassVar, Final, TypeAlias

import cel


class Unsure(Exception):
    """The conditions here cannot give CEL's exact answer for these values: ask the CEL program."""


class CelError:
    """A CEL error as a value: a missing figure, or an operation on the wrong types."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CelError"


ERROR: Final = CelError()
Value: TypeAlias = float | str | bool | CelError

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
# Operators as small numbers: compiled (native.py), `_holds` and `_Arithmetic` compare and
# compute doubles in C, where `operator.ge` and its kind were a call through Python each.
_EQ: Final = 0
_NE: Final = 1
_LT: Final = 2
_LE: Final = 3
_GT: Final = 4
_GE: Final = 5
_RELATIONS: Final = {"==": _EQ, "!=": _NE, "<": _LT, "<=": _LE, ">": _GT, ">=": _GE}
_ADD: Final = 0
_SUB: Final = 1
_MUL: Final = 2
_DIV: Final = 3
_ARITHMETIC: Final = {"+": _ADD, "-": _SUB, "*": _MUL, "/": _DIV}
_PLAIN: Final = frozenset({float, str, bool})  # the types of the values `state.figures` gives

# The parsed expression, as tuples: ("literal", value), ("figure", group, name),
# ("has", group, name), ("relation", op, left, right), ("arithmetic", op, left, right),
# ("negate", inner), ("not", inner), ("and", left, right), ("or", left, right).
Node: TypeAlias = tuple[Any, ...]


class _NotSubset(Exception):
    """The expression uses more of CEL than the conditions here do."""


def compile_condition(program: cel.Program | None) -> Condition | None:
    """The program as a `Condition` over the figures; None if it uses more of CEL than they do."""
    if program is None:
        return None
    tokens: list[tuple[str, str]] = []
    source, at = program.source, 0
    while True:
        match = _TOKEN.match(source, at)
        if match is None:
            if source[at:].strip(" \t\r\n\f"):
                return None  # something not compiled here: `[`, `?`, `%`, `//`, `1`, …
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
        # Interned, as the figures' own names are: a dict finds an identical key at once, and
        # `figures` is presized (a general dict) where an equal key costs a comparison through
        # Python's generic path, a tenth of a condition (docs/benchmarks.md).
        return sys.intern(group), sys.intern(name)


# --- the conditions ------------------------------------------------------------------------------
# Each node of an expression is an object with a `value` method. Compiled (native.py), calling
# `value` on one is a C call through its class's method table, where a closure was a call through
# Python (its argument parsed, its answer boxed): a fifth of an evaluation (docs/benchmarks.md).


class Condition:
    """A condition over the figures as `state.figures` makes them (a dict of dicts): `value`
    gives the CEL program's answer for them, or raises `Unsure`."""

    def value(self, seen: dict[str, Any]) -> Value:
        raise NotImplementedError

    def __call__(self, seen: dict[str, Any]) -> Value:
        return self.value(seen)


def _group(seen: dict[str, Any], name: str) -> dict[str, Any]:
    group = seen.get(name)
    if type(group) is not dict:
        raise Unsure  # `figures` always gives each group as a dict; anything else: ask CEL
    found: dict[str, Any] = group
    return found


def _compared(op: int, x: float, y: float) -> bool:
    """`x op y` for two doubles, in C (native.py)."""
    if op == _GE:
        return x >= y
    if op == _LT:
        return x < y
    if op == _GT:
        return x > y
    if op == _LE:
        return x <= y
    if op == _EQ:
        return x == y
    return x != y


def _holds(op: int, a: Any, b: Any) -> bool:
    """`a op b` for two values of one plain type (the caller checked): doubles compared in C."""
    if type(a) is float:
        return _compared(op, a, b)
    if op == _EQ:
        return bool(a == b)
    if op == _NE:
        return bool(a != b)
    if op == _LT:
        return bool(a < b)
    if op == _LE:
        return bool(a <= b)
    if op == _GT:
        return bool(a > b)
    return bool(a >= b)


def _checked(a: Value, b: Value, ordering: bool) -> None:
    """Values CEL compares as Python does: one type of the three, and no NaN to order."""
    kind = type(a)
    if kind is not type(b) or kind not in _PLAIN:
        raise Unsure
    if ordering and kind is float and (a != a or b != b):
        raise Unsure  # CEL refuses to order NaN


def _emit(node: Node) -> Condition:
    kind = node[0]
    if kind == "literal":
        return _Literal(node[1])
    if kind == "figure":
        return _Figure(node[1], node[2])
    if kind == "has":
        return _Has(node[1], node[2])
    if kind == "relation":
        return _Relation(node[1], _emit(node[2]), _emit(node[3]))
    if kind == "arithmetic":
        return _Arithmetic(node[1], _emit(node[2]), _emit(node[3]))
    if kind == "negate":
        return _Negate(_emit(node[1]))
    if kind == "not":
        return _Not(_emit(node[1]))
    if kind == "and":
        return _conjunction(_flatten("and", node))
    return _Disjunction([_emit(part) for part in _flatten("or", node)])


def _flatten(kind: str, node: Node) -> list[Node]:
    """`a && b && c` as [a, b, c]: the same answer however CEL groups it (errors are absorbed
    by `false` from any side, so the result does not depend on the grouping)."""
    if node[0] != kind:
        return [node]
    return _flatten(kind, node[1]) + _flatten(kind, node[2])


class _Literal(Condition):
    def __init__(self, constant: Value) -> None:
        self.constant = constant

    def value(self, seen: dict[str, Any]) -> Value:
        return self.constant


class _Figure(Condition):
    def __init__(self, group: str, name: str) -> None:
        self.group = group
        self.name = name

    def value(self, seen: dict[str, Any]) -> Value:
        value = _group(seen, self.group).get(self.name, ERROR)
        if value is ERROR or type(value) in _PLAIN:
            return value  # type: ignore[no-any-return]
        raise Unsure


class _Has(Condition):
    def __init__(self, group: str, name: str) -> None:
        self.group = group
        self.name = name

    def value(self, seen: dict[str, Any]) -> Value:
        return self.name in _group(seen, self.group)


class _Relation(Condition):
    def __init__(self, op: str, first: Condition, second: Condition) -> None:
        self.op = _RELATIONS[op]
        self.ordering = op not in ("==", "!=")
        self.first = first
        self.second = second

    def value(self, seen: dict[str, Any]) -> Value:
        a, b = self.first.value(seen), self.second.value(seen)
        if a is ERROR or b is ERROR:
            return ERROR
        _checked(a, b, self.ordering)
        return _holds(self.op, a, b)


class _Arithmetic(Condition):
    def __init__(self, op: str, first: Condition, second: Condition) -> None:
        self.op = _ARITHMETIC[op]
        self.first = first
        self.second = second

    def value(self, seen: dict[str, Any]) -> Value:
        a, b = self.first.value(seen), self.second.value(seen)
        if a is ERROR or b is ERROR:
            return ERROR
        if type(a) is not float or type(b) is not float:
            raise Unsure
        x: float = a
        y: float = b
        op = self.op
        if op == _ADD:
            return x + y
        if op == _SUB:
            return x - y
        if op == _MUL:
            return x * y
        if y == 0.0:
            raise Unsure  # CEL divides by zero into inf or NaN; Python raises
        return x / y


class _Negate(Condition):
    def __init__(self, inner: Condition) -> None:
        self.inner = inner

    def value(self, seen: dict[str, Any]) -> Value:
        a = self.inner.value(seen)
        if a is ERROR:
            return ERROR
        if type(a) is not float:
            raise Unsure
        x: float = a
        return -x


class _Not(Condition):
    def __init__(self, inner: Condition) -> None:
        self.inner = inner

    def value(self, seen: dict[str, Any]) -> Value:
        a = self.inner.value(seen)
        if a is True or a is False:
            return not a
        if a is ERROR:
            return ERROR
        raise Unsure


class _Disjunction(Condition):
    """`||` over all parts: true if any is true, false if all are false, else an error."""

    def __init__(self, parts: list[Condition]) -> None:
        self.parts = parts

    def value(self, seen: dict[str, Any]) -> Value:
        failed = False
        for part in self.parts:
            value = part.value(seen)
            if value is True:
                return True
            if value is not False:
                failed = True
        return ERROR if failed else False


# What a comparison inside a conjunction found.
_FALSE: Final = 0
_TRUE: Final = 1
_MISSING: Final = 2  # a figure not reported: an error, which a false part elsewhere absorbs
_ABSENT: Final = -1  # a figure not reported that a `has()` guards: the whole is false


class _Test:
    """A comparison of a figure, checked in place inside a conjunction."""

    def outcome(self, seen: dict[str, Any]) -> int:
        raise NotImplementedError


class _Constant(_Test):
    """`g.f <op> literal`."""

    def __init__(self, group: str, name: str, op: str, constant: float | str | bool) -> None:
        self.group = group
        self.name = name
        self.op = _RELATIONS[op]
        self.constant = constant
        self.kind = type(constant)
        self.ordering = op not in ("==", "!=")
        self.double = type(constant) is float  # the usual case: compared as C doubles
        self.number: float = constant if type(constant) is float else 0.0
        self.guarded = False  # a `has()` of the figure is part of the conjunction

    def outcome(self, seen: dict[str, Any]) -> int:
        a = _group(seen, self.group).get(self.name, ERROR)
        if a is ERROR:
            return _ABSENT if self.guarded else _MISSING
        if self.double:
            if type(a) is not float:
                raise Unsure  # another type than the literal's: ask CEL
            x: float = a
            if x != x and self.ordering:
                raise Unsure  # CEL refuses to order NaN
            return _TRUE if _compared(self.op, x, self.number) else _FALSE
        if type(a) is not self.kind:
            raise Unsure
        return _TRUE if _holds(self.op, a, self.constant) else _FALSE


class _Pair(_Test):
    """`g.f <op> h.e`."""

    def __init__(self, group: str, name: str, op: str, other_group: str, other: str) -> None:
        self.group = group
        self.name = name
        self.op = _RELATIONS[op]
        self.other_group = other_group
        self.other = other
        self.ordering = op not in ("==", "!=")
        self.guarded = False  # by a `has()` of the first figure
        self.other_guarded = False  # of the second

    def outcome(self, seen: dict[str, Any]) -> int:
        a = _group(seen, self.group).get(self.name, ERROR)
        b = _group(seen, self.other_group).get(self.other, ERROR)
        if a is ERROR or b is ERROR:
            if (a is ERROR and self.guarded) or (b is ERROR and self.other_guarded):
                return _ABSENT
            return _MISSING
        _checked(a, b, self.ordering)
        return _TRUE if _holds(self.op, a, b) else _FALSE


def _conjunction(parts: list[Node]) -> Condition:
    """`&&` over the parts, the usual ones checked in place: `has(g.f)` guards first (a missing
    figure makes the whole false at once), then comparisons of a figure with a literal, then of
    two figures, then the rest.

    A guard of a figure that a comparison reads is checked by that comparison as it reads it
    (one lookup, not two): a missing figure still makes the whole false. Only the route can
    differ, never the answer: were an earlier comparison unsure of its values, the CEL program
    answers instead, and its `false && …` is false too."""
    guards = [(part[1], part[2]) for part in parts if part[0] == "has"]
    constants: list[_Constant] = []
    pairs: list[_Pair] = []
    others = []
    for part in parts:
        if part[0] == "has":
            continue
        if part[0] == "relation" and part[2][0] == "figure" and part[3][0] == "literal":
            op, (_, group, name), (_, constant) = part[1], part[2], part[3]
            constants.append(_Constant(group, name, op, constant))
        elif part[0] == "relation" and part[2][0] == "figure" and part[3][0] == "figure":
            op, (_, group, name), (_, other_group, other) = part[1], part[2], part[3]
            pairs.append(_Pair(group, name, op, other_group, other))
        else:
            others.append(_emit(part))
    if len(guards) == 1 and len(constants) == 1 and not pairs and not others:
        test = constants[0]
        if guards[0] == (test.group, test.name):
            return _Guarded(test)
    left = []
    for guard in guards:
        if not _guards_a_test(guard, constants, pairs):
            left.append(guard)
    tests: list[_Test] = [*constants, *pairs]
    return _Conjunction(left, tests, others)


def _guards_a_test(guard: tuple[str, str], constants: list[_Constant], pairs: list[_Pair]) -> bool:
    """Hand the guard to the first comparison that reads its figure; False if none does."""
    for constant in constants:
        if (constant.group, constant.name) == guard:
            constant.guarded = True
            return True
    for pair in pairs:
        if (pair.group, pair.name) == guard:
            pair.guarded = True
            return True
        if (pair.other_group, pair.other) == guard:
            pair.other_guarded = True
            return True
    return False


class _Conjunction(Condition):
    """`&&` over all parts: false if any is false, true if all are true, else an error."""

    def __init__(
        self, guards: list[tuple[str, str]], tests: list[_Test], others: list[Condition]
    ) -> None:
        self.guards = guards
        self.tests = tests
        self.others = others

    def value(self, seen: dict[str, Any]) -> Value:
        for group, name in self.guards:
            if name not in _group(seen, group):
                return False
        failed = False
        for test in self.tests:
            found = test.outcome(seen)
            if found <= _FALSE:  # false, or a guarded figure absent
                return False
            if found == _MISSING:
                failed = True
        for other in self.others:
            value = other.value(seen)
            if value is False:
                return False
            if value is not True:
                failed = True
        return ERROR if failed else True


class _Guarded(Condition):
    """`has(g.f) && g.f <op> literal`, the most common condition, in one step: a figure not
    reported makes `has` false, and so the whole."""

    def __init__(self, test: _Constant) -> None:
        self.test = test

    def value(self, seen: dict[str, Any]) -> Value:
        return self.test.outcome(seen) == _TRUE
