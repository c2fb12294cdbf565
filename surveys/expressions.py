"""The XLSForm expression subset: parser, printer and interpreter (never ``eval``).

Grammar (lowest to highest precedence, binary operators are left-associative)::

    or_expr   := and_expr ("or" and_expr)*
    and_expr  := eq_expr ("and" eq_expr)*
    eq_expr   := rel_expr (("=" | "!=") rel_expr)*
    rel_expr  := add_expr (("<" | "<=" | ">" | ">=") add_expr)*
    add_expr  := mul_expr (("+" | "-") mul_expr)*
    mul_expr  := unary (("*" | "div" | "mod") unary)*
    unary     := "-" unary | primary
    primary   := NUMBER | 'string' | "string" | ${name} | "." | name "(" args ")" | name
                 | "(" or_expr ")"

``${name}`` refers to a question, a calculation or a lead attribute; ``.`` is the value being
checked (constraints); a bare ``name`` is a column of the choices sheet and is only meaningful
in a ``choice_filter``. Values follow XPath 1.0 conversions: an unanswered question is the
empty string, which is ``NaN`` as a number, so ``${age} > 17`` is false until ``age`` is
answered. Dates are ISO ``YYYY-MM-DD`` strings and compare as dates.

The parser is a lark LALR grammar; :func:`to_source` prints an AST back to text so that
``parse(to_source(parse(s))) == parse(s)`` for every valid ``s``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Final, TypeAlias

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from surveys.exceptions import ExpressionError, ExpressionSyntaxError
from surveys.regex import RegexError
from surveys.regex import search as regex_search

__all__ = [
    "FUNCTIONS",
    "MAX_EXPRESSION_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_TEXT_VALUE",
    "BinaryOp",
    "Call",
    "ChoiceField",
    "Current",
    "EvalContext",
    "Negate",
    "Node",
    "NumberLiteral",
    "Reference",
    "StringLiteral",
    "Value",
    "evaluate",
    "iter_nodes",
    "parse",
    "references",
    "rename_references",
    "to_bool",
    "to_number",
    "to_source",
    "to_text",
]

MAX_EXPRESSION_LENGTH: Final = 4000
MAX_EXPRESSION_DEPTH: Final = 100
"""Deepest nesting (parentheses, operator chains, calls) accepted; deeper is a syntax error."""
MAX_TEXT_VALUE: Final = 100_000
"""Longest text a function may build: ``concat`` of ``concat`` chains cannot grow unbounded."""

Value: TypeAlias = bool | int | float | str | list[str] | None

_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr | or_expr OR and_expr -> binary
?and_expr: eq_expr | and_expr AND eq_expr -> binary
?eq_expr: rel_expr | eq_expr EQ_OP rel_expr -> binary
?rel_expr: add_expr | rel_expr REL_OP add_expr -> binary
?add_expr: mul_expr | add_expr PLUS mul_expr -> binary | add_expr MINUS mul_expr -> binary
?mul_expr: unary | mul_expr MUL_OP unary -> binary
?unary: primary | MINUS unary -> negate
?primary: NUMBER -> number
    | STRING -> string
    | REF -> reference
    | DOT -> current
    | NAME LPAR [or_expr (COMMA or_expr)*] RPAR -> call
    | NAME -> choice_field
    | LPAR or_expr RPAR -> paren
OR: "or"
AND: "and"
EQ_OP: "=" | "!="
REL_OP: "<=" | ">=" | "<" | ">"
PLUS: "+"
MINUS: "-"
MUL_OP: "*" | "div" | "mod"
LPAR: "("
RPAR: ")"
COMMA: ","
DOT: "."
NUMBER: /[0-9]+(\.[0-9]+)?|\.[0-9]+/
STRING: /'[^']*'/ | /"[^"]*"/
REF: /\$\{[A-Za-z_][A-Za-z0-9_.\-]*\}/
NAME: /[A-Za-z_][A-Za-z0-9_\-]*(:[A-Za-z_][A-Za-z0-9_\-]*)?/
%import common.WS
%ignore WS
"""


@dataclass(frozen=True, slots=True)
class NumberLiteral:
    """A number written in the expression (never negative: ``-3`` is ``Negate(3)``)."""

    value: Decimal
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class StringLiteral:
    """A quoted string."""

    value: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Reference:
    """``${name}``: the value of a question, calculation or lead attribute."""

    name: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Current:
    """``.``: the value being validated by a constraint."""

    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ChoiceField:
    """A bare name: a column of the choice being filtered by a ``choice_filter``."""

    name: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Negate:
    """Unary minus."""

    operand: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class BinaryOp:
    """A binary operator: ``or and = != < <= > >= + - * div mod``."""

    op: str
    left: Node
    right: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    """A function call such as ``selected(${q}, 'a')``."""

    name: str
    args: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


Node: TypeAlias = (
    NumberLiteral | StringLiteral | Reference | Current | ChoiceField | Negate | BinaryOp | Call
)

# Binding strength used by the printer; must agree with the grammar above.
_PRECEDENCE: Final[dict[str, int]] = {
    "or": 1,
    "and": 2,
    "=": 3,
    "!=": 3,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "div": 6,
    "mod": 6,
}
_UNARY_PRECEDENCE: Final = 7


def _pos(token: Token) -> int:
    return int(token.column) if token.column is not None else 0


@v_args(inline=True)
class _ToAst(Transformer[Token, Node]):
    def binary(self, left: Node, op: Token, right: Node) -> Node:
        return BinaryOp(str(op), left, right, pos=_pos(op))

    def negate(self, minus: Token, operand: Node) -> Node:
        return Negate(operand, pos=_pos(minus))

    def number(self, token: Token) -> Node:
        return NumberLiteral(Decimal(str(token)), pos=_pos(token))

    def string(self, token: Token) -> Node:
        return StringLiteral(str(token)[1:-1], pos=_pos(token))

    def reference(self, token: Token) -> Node:
        return Reference(str(token)[2:-1], pos=_pos(token))

    def current(self, token: Token) -> Node:
        return Current(pos=_pos(token))

    def choice_field(self, token: Token) -> Node:
        return ChoiceField(str(token), pos=_pos(token))

    def paren(self, _left: Token, inner: Node, _right: Token) -> Node:
        return inner

    def call(self, name: Token, _lpar: Token, *rest: Node | Token | None) -> Node:
        args = tuple(item for item in rest if item is not None and not isinstance(item, Token))
        return Call(str(name), args, pos=_pos(name))


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=False)


@lru_cache(maxsize=4096)
def parse(text: str) -> Node:
    """Parse an expression into an AST; raises ExpressionSyntaxError with the column."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionSyntaxError(
            f"expression is {len(text)} characters long; the limit is {MAX_EXPRESSION_LENGTH}, "
            "split it into calculate questions",
            expression=text,
            position=MAX_EXPRESSION_LENGTH,
        )
    if not text.strip():
        raise ExpressionSyntaxError("expression is empty", expression=text, position=1)
    try:
        tree = _parser().parse(normalize_source(text))
        _check_depth(tree, text)
        return _ToAst().transform(tree)
    except UnexpectedCharacters as exc:
        column = int(exc.column)
        raise ExpressionSyntaxError(
            f"unexpected character {text[column - 1]!r} at column {column}",
            expression=text,
            position=column,
        ) from None
    except UnexpectedEOF:
        raise ExpressionSyntaxError(
            "expression ends too early (missing operand or closing parenthesis?)",
            expression=text,
            position=len(text) + 1,
        ) from None
    except UnexpectedInput as exc:
        column = int(getattr(exc, "column", 0) or len(text) + 1)
        token = getattr(exc, "token", None)
        if token is not None and getattr(token, "type", "") == "$END":
            raise ExpressionSyntaxError(
                "expression ends too early (missing operand or closing parenthesis?)",
                expression=text,
                position=len(text) + 1,
            ) from None
        shown = str(token) if token is not None else text[column - 1 : column]
        raise ExpressionSyntaxError(
            f"unexpected {shown!r} at column {column}", expression=text, position=column
        ) from None
    except LarkError as exc:  # pragma: no cover - defensive: lark's other failures
        raise ExpressionSyntaxError(str(exc), expression=text, position=1) from None


def _check_depth(tree: Tree[Token], text: str) -> None:
    """Refuse trees deeper than MAX_EXPRESSION_DEPTH, without recursion (the AST builder,
    the printer and the interpreter recurse, so a 2,000-deep tree would overflow the stack)."""
    stack: list[tuple[Tree[Token] | Token, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            raise ExpressionSyntaxError(
                f"expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep; "
                "split it into calculate questions",
                expression=text,
                position=1,
            )
        if isinstance(node, Tree):
            stack.extend((child, depth + 1) for child in node.children if child is not None)


def _format_decimal(value: Decimal) -> str:
    text = format(value, "f")
    return text


def _quote(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ExpressionError(
        "a string literal cannot contain both ' and \" in this expression language; "
        "use concat() of two strings"
    )


def to_source(node: Node) -> str:
    """Print an AST as expression text with the minimum parentheses."""
    return _print(node, 0)


def _print(node: Node, context: int) -> str:
    match node:
        case NumberLiteral(value=value):
            return _format_decimal(value)
        case StringLiteral(value=value):
            return _quote(value)
        case Reference(name=name):
            return "${" + name + "}"
        case Current():
            return "."
        case ChoiceField(name=name):
            return name
        case Negate(operand=operand):
            text = "-" + _print(operand, _UNARY_PRECEDENCE)
            return f"({text})" if context > _UNARY_PRECEDENCE else text
        case BinaryOp(op=op, left=left, right=right):
            precedence = _PRECEDENCE[op]
            # Left-associative: the right operand needs parentheses at equal precedence.
            text = f"{_print(left, precedence)} {op} {_print(right, precedence + 1)}"
            return f"({text})" if context > precedence else text
        case Call(name=name, args=args):
            return f"{name}({', '.join(_print(arg, 0) for arg in args)})"
    raise ExpressionError(f"cannot print unknown node {node!r}")  # pragma: no cover


def iter_nodes(node: Node) -> Iterator[Node]:
    """Yield the node and all its descendants, depth first."""
    yield node
    match node:
        case Negate(operand=operand):
            yield from iter_nodes(operand)
        case BinaryOp(left=left, right=right):
            yield from iter_nodes(left)
            yield from iter_nodes(right)
        case Call(args=args):
            for arg in args:
                yield from iter_nodes(arg)
        case _:
            pass


_INSTANCE_PATH = re.compile(
    r"instance\(\s*'([^']+)'\s*\)\s*/\s*root\s*/\s*item\s*\[\s*([A-Za-z_][\w.-]*)\s*=\s*"
    r"([^\]]+?)\s*\]\s*/\s*([A-Za-z_][\w:.-]*)"
)


def normalize_source(text: str) -> str:
    """Rewrite XLSForm idioms our grammar has as functions:
    ``instance('L')/root/item[name = X]/label`` -> ``pulldata('L', 'label', 'name', X)``."""
    return _INSTANCE_PATH.sub(r"pulldata('\1', '\4', '\2', \3)", text)


def rename_references(text: str, renames: Mapping[str, str], *, position: int) -> str:
    """The expression with ``${old}`` renamed and ``position(..)`` replaced by ``position``
    (used to unroll a repeat into numbered copies)."""
    text = re.sub(r"position\(\s*\.\.\s*\)", str(position), text)

    def swap(match: re.Match[str]) -> str:
        name = match.group(1)
        return "${" + renames.get(name, name) + "}"

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\}", swap, text)


def references(node: Node) -> set[str]:
    """Names referenced as ``${name}`` anywhere in the expression."""
    return {n.name for n in iter_nodes(node) if isinstance(n, Reference)}


@dataclass(frozen=True, slots=True)
class EvalContext:
    """What an expression can see: values by name, ``.``, today's date, a choice's columns."""

    values: Mapping[str, Value]
    current: Value = None
    today: date | None = None
    choice: Mapping[str, str] | None = None
    now: datetime | None = None
    tables: Mapping[str, Sequence[Mapping[str, str]]] = field(default_factory=dict)
    """Lookup tables by name (choice lists and attached CSVs) for pulldata()."""
    choice_label: Callable[[str, str], str] | None = None
    """The label of value in the list of a question: jr:choice-name()."""


# --- conversions (XPath 1.0 rules) -----------------------------------------------------


def to_number(value: Value) -> float:
    """Convert to a number; empty or non-numeric text is NaN."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return to_number(value[0]) if len(value) == 1 else math.nan
    try:
        return float(value.strip())
    except ValueError:
        return math.nan


def to_bool(value: Value) -> bool:
    """Convert to a boolean: non-empty text, non-zero numbers and non-empty lists are true."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0 and not math.isnan(value)
    return len(value) > 0


def to_text(value: Value) -> str:
    """Convert to text: numbers without a needless ``.0``, lists space-separated."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, list):
        return " ".join(value)
    return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _as_date(value: Value) -> date | None:
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _selection(value: Value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return to_text(value).split()


def _compare(op: str, left: Value, right: Value) -> bool:
    if op in ("=", "!="):
        if isinstance(left, bool) or isinstance(right, bool):
            equal = to_bool(left) == to_bool(right)
        elif isinstance(left, int | float) or isinstance(right, int | float):
            equal = to_number(left) == to_number(right)
        else:
            equal = to_text(left) == to_text(right)
        return equal if op == "=" else not equal
    left_date, right_date = _as_date(left), _as_date(right)
    if left_date is not None and right_date is not None:
        a: float | date = left_date
        b: float | date = right_date
    else:
        a, b = to_number(left), to_number(right)
        if math.isnan(a) or math.isnan(b):
            return False
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


def _arithmetic(op: str, left: Value, right: Value) -> float:
    a, b = to_number(left), to_number(right)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "div":
        if b == 0:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
        return a / b
    if b == 0 or math.isnan(a) or math.isnan(b):
        return math.nan
    return math.fmod(a, b)


# --- functions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Function:
    min_args: int
    max_args: int | None
    impl: Callable[[Sequence[Value], EvalContext], Value]


def _regex(args: Sequence[Value], _ctx: EvalContext) -> Value:
    try:
        return regex_search(to_text(args[1]), to_text(args[0]))
    except RegexError:
        return False


def _bounded(text: str) -> str:
    if len(text) > MAX_TEXT_VALUE:
        raise ExpressionError(
            f"an expression built a text of {len(text)} characters; the limit is {MAX_TEXT_VALUE}"
        )
    return text


def _concat(args: Sequence[Value], _ctx: EvalContext) -> Value:
    return _bounded("".join(to_text(v) for v in args))


def _today(_args: Sequence[Value], ctx: EvalContext) -> Value:
    if ctx.today is None:
        raise ExpressionError("today() needs a date: pass today= in the evaluation context")
    return ctx.today.isoformat()


def _coalesce(args: Sequence[Value], _ctx: EvalContext) -> Value:
    for arg in args:
        if to_text(arg) != "":
            return arg
    return ""


def _round(args: Sequence[Value], _ctx: EvalContext) -> Value:
    number = to_number(args[0])
    digits = int(to_number(args[1])) if len(args) > 1 else 0
    if math.isnan(number) or math.isinf(number):
        return number
    quantum = Decimal(1).scaleb(-digits)
    rounded = Decimal(repr(number)).quantize(quantum, rounding="ROUND_HALF_UP")
    return float(rounded)


def _int(args: Sequence[Value], _ctx: EvalContext) -> Value:
    number = to_number(args[0])
    if math.isnan(number) or math.isinf(number):
        return number
    return float(math.trunc(number))


def _substr(args: Sequence[Value], _ctx: EvalContext) -> Value:
    text = to_text(args[0])
    start = int(to_number(args[1]))
    end = int(to_number(args[2])) if len(args) > 2 else len(text)
    return text[start:end]


def _math(function: Callable[..., float]) -> Callable[[Sequence[Value], EvalContext], Value]:
    def impl(args: Sequence[Value], _ctx: EvalContext) -> Value:
        try:
            return float(function(*(to_number(a) for a in args)))
        except (ValueError, OverflowError, ZeroDivisionError):
            return math.nan

    return impl


def _pulldata(args: Sequence[Value], ctx: EvalContext) -> Value:
    table = ctx.tables.get(to_text(args[0]).removesuffix(".csv"), ())
    column, key_column, key = to_text(args[1]), to_text(args[2]), to_text(args[3])
    for row in table:
        if row.get(key_column) == key:
            return row.get(column, "")
    return ""


def _choice_name(args: Sequence[Value], ctx: EvalContext) -> Value:
    if ctx.choice_label is None:
        return ""
    question = to_text(args[1]).strip()
    if question.startswith("${") and question.endswith("}"):
        question = question[2:-1]
    return ctx.choice_label(to_text(args[0]), question)


def _now(_args: Sequence[Value], ctx: EvalContext) -> Value:
    if ctx.now is None:
        raise ExpressionError("now() needs a time: pass now= in the evaluation context")
    return ctx.now.isoformat()


def _date(args: Sequence[Value], _ctx: EvalContext) -> Value:
    value = args[0]
    if isinstance(value, str) and _as_date(value[:10]) is not None:
        return value[:10]
    number = to_number(value)
    if math.isnan(number) or abs(number) > 3_000_000:
        return ""
    return (date(1970, 1, 1) + timedelta(days=int(number))).isoformat()


_DATE_FORMATS: Final = {"%Y": "%Y", "%y": "%y", "%m": "%m", "%d": "%d", "%b": "%b", "%a": "%a",
                        "%H": "%H", "%M": "%M", "%S": "%S"}  # fmt: skip


def _format_date(args: Sequence[Value], _ctx: EvalContext) -> Value:
    text = to_text(args[0])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return ""
    pattern = to_text(args[1])
    out = []
    index = 0
    while index < len(pattern):
        directive = pattern[index : index + 2]
        if directive in _DATE_FORMATS:
            out.append(moment.strftime(_DATE_FORMATS[directive]))
            index += 2
        elif directive == "%e":
            out.append(str(moment.day))
            index += 2
        elif directive == "%n":
            out.append(str(moment.month))
            index += 2
        else:
            out.append(pattern[index])
            index += 1
    return "".join(out)


_Impl: TypeAlias = Callable[[Sequence[Value], EvalContext], Value]


def _extreme(pick: Callable[[list[float]], float]) -> _Impl:
    def impl(args: Sequence[Value], _ctx: EvalContext) -> Value:
        numbers = [to_number(v) for a in args for v in (a if isinstance(a, list) else [a])]
        if not numbers or any(math.isnan(n) for n in numbers):
            return math.nan
        return pick(numbers)

    return impl


def _split(args: Sequence[Value]) -> tuple[str, str]:
    text, part = to_text(args[0]), to_text(args[1])
    if part not in text:
        return "", ""
    before, _, after = text.partition(part)
    return before, after


def _selected_at(args: Sequence[Value], _ctx: EvalContext) -> Value:
    chosen = _selection(args[0])
    index = int(to_number(args[1])) if not math.isnan(to_number(args[1])) else -1
    return chosen[index] if 0 <= index < len(chosen) else ""


FUNCTIONS: Final[dict[str, _Function]] = {
    "once": _Function(1, 1, lambda a, _c: a[0]),
    "normalize-space": _Function(1, 1, lambda a, _c: " ".join(to_text(a[0]).split())),
    "substring-before": _Function(2, 2, lambda a, _c: _split(a)[0]),
    "substring-after": _Function(2, 2, lambda a, _c: _split(a)[1]),
    "pow": _Function(2, 2, _math(math.pow)),
    "sqrt": _Function(1, 1, _math(math.sqrt)),
    "abs": _Function(1, 1, _math(abs)),
    "floor": _Function(1, 1, _math(math.floor)),
    "ceiling": _Function(1, 1, _math(math.ceil)),
    "exp": _Function(1, 1, _math(math.exp)),
    "exp10": _Function(1, 1, _math(lambda x: 10.0**x)),
    "log": _Function(1, 1, _math(math.log)),
    "log10": _Function(1, 1, _math(math.log10)),
    "sin": _Function(1, 1, _math(math.sin)),
    "cos": _Function(1, 1, _math(math.cos)),
    "tan": _Function(1, 1, _math(math.tan)),
    "asin": _Function(1, 1, _math(math.asin)),
    "acos": _Function(1, 1, _math(math.acos)),
    "atan": _Function(1, 1, _math(math.atan)),
    "atan2": _Function(2, 2, _math(math.atan2)),
    "pi": _Function(0, 0, lambda _a, _c: math.pi),
    "min": _Function(1, None, _extreme(min)),
    "max": _Function(1, None, _extreme(max)),
    "pulldata": _Function(4, 4, _pulldata),
    "jr:choice-name": _Function(2, 2, _choice_name),
    "now": _Function(0, 0, _now),
    "date": _Function(1, 1, _date),
    "format-date": _Function(2, 2, _format_date),
    "format-date-time": _Function(2, 2, _format_date),
    "selected-at": _Function(2, 2, _selected_at),
    "selected": _Function(2, 2, lambda a, _c: to_text(a[1]) in _selection(a[0])),
    "count-selected": _Function(1, 1, lambda a, _c: len(_selection(a[0]))),
    "string-length": _Function(1, 1, lambda a, _c: len(to_text(a[0]))),
    "if": _Function(3, 3, lambda a, _c: a[1] if to_bool(a[0]) else a[2]),
    "coalesce": _Function(2, None, _coalesce),
    "regex": _Function(2, 2, _regex),
    "today": _Function(0, 0, _today),
    "not": _Function(1, 1, lambda a, _c: not to_bool(a[0])),
    "true": _Function(0, 0, lambda _a, _c: True),
    "false": _Function(0, 0, lambda _a, _c: False),
    "number": _Function(1, 1, lambda a, _c: to_number(a[0])),
    "string": _Function(1, 1, lambda a, _c: to_text(a[0])),
    "boolean": _Function(1, 1, lambda a, _c: to_bool(a[0])),
    "int": _Function(1, 1, _int),
    "round": _Function(1, 2, _round),
    "concat": _Function(1, None, _concat),
    "contains": _Function(2, 2, lambda a, _c: to_text(a[1]) in to_text(a[0])),
    "starts-with": _Function(2, 2, lambda a, _c: to_text(a[0]).startswith(to_text(a[1]))),
    "substr": _Function(2, 3, _substr),
}


def evaluate(node: Node, context: EvalContext) -> Value:
    """Evaluate an AST against a context; unknown names evaluate as empty."""
    match node:
        case NumberLiteral(value=value):
            return float(value)
        case StringLiteral(value=value):
            return value
        case Reference(name=name):
            return context.values.get(name)
        case Current():
            return context.current
        case ChoiceField(name=name):
            if context.choice is None:
                return None
            return context.choice.get(name)
        case Negate(operand=operand):
            return -to_number(evaluate(operand, context))
        case BinaryOp(op="or", left=left, right=right):
            return to_bool(evaluate(left, context)) or to_bool(evaluate(right, context))
        case BinaryOp(op="and", left=left, right=right):
            return to_bool(evaluate(left, context)) and to_bool(evaluate(right, context))
        case BinaryOp(op=op, left=left, right=right) if op in ("=", "!=", "<", "<=", ">", ">="):
            return _compare(op, evaluate(left, context), evaluate(right, context))
        case BinaryOp(op=op, left=left, right=right):
            return _arithmetic(op, evaluate(left, context), evaluate(right, context))
        case Call(name=name, args=args):
            function = FUNCTIONS.get(name)
            if function is None:
                raise ExpressionError(f"unknown function {name}(); see surveys/SCHEMA.md")
            count = len(args)
            if count < function.min_args or (
                function.max_args is not None and count > function.max_args
            ):
                raise ExpressionError(f"{name}() does not take {count} argument(s)")
            return function.impl([evaluate(arg, context) for arg in args], context)
    raise ExpressionError(f"cannot evaluate unknown node {node!r}")  # pragma: no cover
