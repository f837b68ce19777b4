"""The filter language's parser: text to a tree (`runtime.query.tree`), by hand.

    title ~ 'report' && (priority >= 2 || owner = @me) && done != true

Recursive descent over tokens, one function per level of the grammar (docs/api.md,
"Filters"). Bounds on length, nesting and terms are checked as it goes, so that a
hostile expression costs at most their worth of work. Every error is a `FilterError`
with the 0-based position where the trouble starts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import FilterError
from .limits import FilterLimits
from .tree import COMPARISONS, All, Any, Comparison, Literal, Me, Membership, Node, Not, Value

__all__ = ["parse_filter"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_SPACE = re.compile(r"[ \t\r\n]*")
# Longest first: `<=` before `<`, `!=` before `!`.
_SYMBOLS = ("&&", "||", "!=", "!~", "<=", ">=", "=", "<", ">", "~", "!", "(", ")", ",")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_KEYWORDS = {"true": True, "false": False, "null": None}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "name", "me", "text", "number", "end", or the symbol itself
    value: str | int | float
    position: int


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the filter"
    if token.kind == "text":
        return "quoted text"
    return repr(str(token.value)[:32])


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    i = _SPACE.match(text, 0).end()  # type: ignore[union-attr]
    while i < len(text):
        if text[i] in "'\"":
            value, end = _text(text, i)
            found.append(_Token("text", value, i))
        elif text.startswith("!in", i) and not _NAME.match(text, i + 3):
            found.append(_Token("!in", "!in", i))  # `!in (…)`; `!include` is `!` + a name
            end = i + 3
        elif match := _NUMBER.match(text, i):
            found.append(_Token("number", _number(match[0], i), i))
            end = match.end()
        elif match := _NAME.match(text, i):
            found.append(_Token("name", match[0], i))
            end = match.end()
        elif text.startswith("@me", i) and not _NAME.match(text, i + 3):
            found.append(_Token("me", "@me", i))
            end = i + 3
        else:
            symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
            if symbol is None:
                raise FilterError(f"unexpected character {text[i]!r}", i)
            found.append(_Token(symbol, symbol, i))
            end = i + len(symbol)
        i = _SPACE.match(text, end).end()  # type: ignore[union-attr]
    found.append(_Token("end", "", len(text)))
    return found


def _text(text: str, start: int) -> tuple[str, int]:
    """The quoted text that starts at `start`, and where it ends."""
    quote, i = text[start], start + 1
    parts: list[str] = []
    while i < len(text):
        char, at = text[i], i
        if char == quote:
            return "".join(parts), i + 1
        if char == "\\":
            escape = text[i + 1 : i + 2]
            if escape == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", text[i + 2 : i + 6]):
                char, i = chr(int(text[i + 2 : i + 6], 16)), i + 6
            elif escape in _ESCAPES:
                char, i = _ESCAPES[escape], i + 2
            else:
                known = "\\\\, \\', \\\", \\n, \\t, \\r or \\uXXXX"
                raise FilterError(f"unknown escape: use {known}", i)
        else:
            i += 1
        # Neither can be stored in text (PostgreSQL has no NUL; UTF-8 no lone surrogate).
        if char == "\x00" or "\ud800" <= char <= "\udfff":
            raise FilterError("text may not hold NUL or a lone surrogate", at)
        parts.append(char)
    raise FilterError("quoted text that never ends", start)


def _number(raw: str, position: int) -> int | float:
    if re.fullmatch(r"-?[0-9]+", raw):
        return int(raw)
    number = float(raw)
    if not math.isfinite(number):
        raise FilterError("a number too large", position)
    return number


class _Parser:
    def __init__(self, text: str, limits: FilterLimits) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.limits = limits
        self.terms = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def take(self, kind: str) -> _Token | None:
        token = self.token
        if token.kind != kind:
            return None
        self.at += 1
        return token

    def expect(self, kind: str, what: str) -> _Token:
        token = self.take(kind)
        if token is None:
            found = _describe(self.token)
            raise FilterError(f"expected {what}, found {found}", self.token.position)
        return token

    def count_term(self, position: int) -> None:
        self.terms += 1
        if self.terms > self.limits.max_terms:
            raise FilterError(f"more than {self.limits.max_terms} terms", position)

    # filter := or END
    def filter(self) -> Node:
        node = self.or_(0)
        self.expect("end", "'&&', '||' or the end of the filter")
        return node

    # or := and ("||" and)*
    def or_(self, depth: int) -> Node:
        operands = [self.and_(depth)]
        while self.take("||"):
            operands.append(self.and_(depth))
        return operands[0] if len(operands) == 1 else Any(tuple(operands))

    # and := unary ("&&" unary)*
    def and_(self, depth: int) -> Node:
        operands = [self.unary(depth)]
        while self.take("&&"):
            operands.append(self.unary(depth))
        return operands[0] if len(operands) == 1 else All(tuple(operands))

    # unary := "!" unary | "(" or ")" | comparison
    def unary(self, depth: int) -> Node:
        token = self.token
        if token.kind in ("!", "("):
            if depth >= self.limits.max_depth:
                raise FilterError(f"nested more than {self.limits.max_depth} deep", token.position)
            self.at += 1
            if token.kind == "!":
                return Not(self.unary(depth + 1))
            node = self.or_(depth + 1)
            self.expect(")", "')'")
            return node
        return self.comparison()

    # comparison := NAME OPERATOR value | NAME ("in" | "!in") "(" value ("," value)* ")"
    def comparison(self) -> Node:
        name = self.expect("name", "a field name, '!' or '('")
        field, position = str(name.value), name.position
        self.count_term(position)
        if (self.token.kind == "name" and self.token.value == "in") or self.token.kind == "!in":
            negated = self.token.kind == "!in"
            self.at += 1
            self.expect("(", "'(' to open the list")
            values = [self.value()]
            while self.take(","):
                self.count_term(self.token.position)
                values.append(self.value())
            self.expect(")", "',' or ')'")
            return Membership(field, tuple(values), negated, position)
        operator = self.token
        if operator.kind not in COMPARISONS:
            raise FilterError(
                f"expected an operator (= != < <= > >= ~ !~ in !in) after {field!r}, "
                f"found {_describe(operator)}",
                operator.position,
            )
        self.at += 1
        return Comparison(field, operator.kind, self.value(), position)

    # value := TEXT | NUMBER | "true" | "false" | "null" | "@me"
    def value(self) -> Value:
        token = self.token
        if token.kind in ("text", "number"):
            self.at += 1
            return Literal(token.value, token.position)
        if token.kind == "me":
            self.at += 1
            return Me(token.position)
        if token.kind == "name" and token.value in _KEYWORDS:
            self.at += 1
            return Literal(_KEYWORDS[str(token.value)], token.position)
        what = "a value (quoted text, a number, true, false, null or @me)"
        raise FilterError(f"expected {what}, found {_describe(token)}", token.position)


def parse_filter(text: str, limits: FilterLimits | None = None) -> Node:
    """The tree of `text`, or FilterError saying where it goes wrong."""
    limits = limits or FilterLimits()
    if len(text) > limits.max_length:
        raise FilterError(f"longer than {limits.max_length} characters", limits.max_length)
    return _Parser(text, limits).filter()
