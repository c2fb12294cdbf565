"""The expression language: parsing, printing, evaluation and error positions."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surveys.exceptions import ExpressionError, ExpressionSyntaxError
from surveys.expressions import (
    FUNCTIONS,
    BinaryOp,
    Call,
    ChoiceField,
    Current,
    EvalContext,
    Negate,
    Node,
    NumberLiteral,
    Reference,
    StringLiteral,
    evaluate,
    parse,
    references,
    to_source,
)


def run(text: str, current: object = None, **values: object) -> object:
    context = EvalContext(values=values, current=current, today=date(2026, 3, 2))  # type: ignore[arg-type]
    return evaluate(parse(text), context)


class TestParse:
    def test_precedence_and_associativity(self) -> None:
        tree = parse("1 - 2 - 3 * 4")
        assert tree == BinaryOp(
            "-",
            BinaryOp("-", NumberLiteral(Decimal(1)), NumberLiteral(Decimal(2))),
            BinaryOp("*", NumberLiteral(Decimal(3)), NumberLiteral(Decimal(4))),
        )

    def test_and_binds_tighter_than_or(self) -> None:
        tree = parse("${a} = 1 or ${b} = 2 and ${c} = 3")
        assert isinstance(tree, BinaryOp)
        assert tree.op == "or"
        assert isinstance(tree.right, BinaryOp)
        assert tree.right.op == "and"

    def test_xlsform_idioms(self) -> None:
        tree = parse("selected(${fruits}, 'apple') and count-selected(${fruits}) >= 2")
        assert references(tree) == {"fruits"}
        assert parse(".") == Current()
        assert parse("region = ${region}") == BinaryOp(
            "=", ChoiceField("region"), Reference("region")
        )

    def test_keywords_are_not_names(self) -> None:
        assert parse("10 div 4 mod 3") == BinaryOp(
            "mod",
            BinaryOp("div", NumberLiteral(Decimal(10)), NumberLiteral(Decimal(4))),
            NumberLiteral(Decimal(3)),
        )
        # A name that merely starts with a keyword is a name.
        assert parse("android") == ChoiceField("android")

    @pytest.mark.parametrize(
        ("text", "column"),
        [
            ("${a} == 2", 7),
            ("1 2", 3),
            ("f(1,)", 5),
            ("$x", 1),
            ("${a} + ", 8),
            ("(1", 3),
        ],
    )
    def test_syntax_errors_carry_the_column(self, text: str, column: int) -> None:
        with pytest.raises(ExpressionSyntaxError) as info:
            parse(text)
        assert info.value.position == column
        assert info.value.expression == text

    def test_empty_and_oversized_expressions_are_rejected(self) -> None:
        with pytest.raises(ExpressionSyntaxError, match="empty"):
            parse("   ")
        with pytest.raises(ExpressionSyntaxError, match="limit"):
            parse("1 + " * 2000 + "1")

    def test_eval_is_never_used(self) -> None:
        # Python syntax is not expression syntax: nothing reaches a Python evaluator.
        with pytest.raises(ExpressionSyntaxError):
            parse("__import__('os').system('true')")


class TestPrint:
    @pytest.mark.parametrize(
        ("text", "printed"),
        [
            ("(1 + 2) * 3", "(1 + 2) * 3"),
            ("1 + (2 * 3)", "1 + 2 * 3"),
            ("1 - (2 - 3)", "1 - (2 - 3)"),
            ("(${a} or ${b}) and ${c}", "(${a} or ${b}) and ${c}"),
            ("-(1 + 2)", "-(1 + 2)"),
            ("not( ${a}='x' )", "not(${a} = 'x')"),
            ('"it\'s"', '"it\'s"'),
            (".5", "0.5"),
        ],
    )
    def test_minimal_parentheses(self, text: str, printed: str) -> None:
        assert to_source(parse(text)) == printed

    def test_string_with_both_quotes_cannot_be_printed(self) -> None:
        with pytest.raises(ExpressionError, match="concat"):
            to_source(StringLiteral('it\'s "x"'))


class TestEvaluate:
    def test_unanswered_is_empty_and_comparisons_are_false(self) -> None:
        assert run("${age} > 17") is False
        assert run("${age} < 17") is False
        assert run("${age} = ''") is True
        assert run("${age} > 17", age=18) is True

    def test_choice_values_compare_with_numbers(self) -> None:
        assert run("${q} = 1", q="1") is True
        assert run("${q} != 2", q="1") is True
        assert run("${q} = 'yes'", q="yes") is True

    def test_arithmetic(self) -> None:
        assert run("7 div 2") == 3.5
        assert run("7 mod 3") == 1.0
        assert run("-${x} * 2", x=4) == -8.0
        assert math.isnan(run("${x} + 1"))  # type: ignore[arg-type]
        assert run("1 div 0") == math.inf
        assert math.isnan(run("5 mod 0"))  # type: ignore[arg-type]

    def test_multiple_choice_functions(self) -> None:
        chosen = ["apple", "kiwi"]
        assert run("selected(${f}, 'kiwi')", f=chosen) is True
        assert run("selected(${f}, 'pear')", f=chosen) is False
        assert run("count-selected(${f})", f=chosen) == 2
        assert run("count-selected(${f})") == 0
        assert run("selected(${f}, 'apple')", f="apple kiwi") is True

    def test_text_functions(self) -> None:
        assert run("string-length(.)", current="台北市") == 3
        assert run("regex(., '^09[0-9]{8}$')", current="0912345678") is True
        assert run("regex(., '^09[0-9]{8}$')", current="12345") is False
        assert run("regex(., '[')", current="x") is False
        assert run("concat(${a}, '-', 3)", a="x") == "x-3"
        assert run("substr('abcdef', 1, 3)") == "bc"

    def test_if_coalesce_today_round(self) -> None:
        assert run("if(${n} >= 9, 'promoter', 'other')", n=9) == "promoter"
        assert run("coalesce(${a}, ${b}, 'none')", b="second") == "second"
        assert run("today()") == "2026-03-02"
        assert run("${d} < today()", d="2025-12-31") is True
        assert run("round(2.345, 2)") == 2.35
        assert run("int(-2.7)") == -2.0

    def test_today_needs_a_date(self) -> None:
        with pytest.raises(ExpressionError, match="today"):
            evaluate(parse("today()"), EvalContext(values={}))

    def test_unknown_function_fails_at_evaluation(self) -> None:
        with pytest.raises(ExpressionError, match="unknown function"):
            run("jr:choose-name(1, 'x')")

    def test_boolean_logic(self) -> None:
        assert run("not(${a}) and true()") is True
        assert run("${a} or false()", a="x") is True
        assert run("boolean(0)") is False


# --- property: parse -> print -> parse is the same AST -----------------------------------

_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
_keywords = {"and", "or", "div", "mod"}
_strings = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="'"), max_size=8)
_numbers = st.decimals(min_value=0, max_value=10**6, allow_nan=False, places=3).filter(
    lambda d: not d.is_signed()
)
_leaves: st.SearchStrategy[Node] = st.one_of(
    _numbers.map(NumberLiteral),
    _strings.map(StringLiteral),
    _names.map(Reference),
    st.just(Current()),
    _names.filter(lambda n: n not in _keywords).map(ChoiceField),
)
_operators = ["or", "and", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "div", "mod"]


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        children.map(Negate),
        st.builds(BinaryOp, st.sampled_from(_operators), children, children),
        st.builds(
            Call,
            st.sampled_from(sorted(FUNCTIONS)),
            st.lists(children, max_size=3).map(tuple),
        ),
    )


asts = st.recursive(_leaves, _extend, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(asts)
def test_print_then_parse_gives_the_same_ast(tree: Node) -> None:
    assert parse(to_source(tree)) == tree


_tokens = st.sampled_from(
    [
        "${a}",
        "${b}",
        ".",
        "1",
        "2.5",
        "'x'",
        "(",
        ")",
        "+",
        "-",
        "*",
        "div",
        "=",
        "<",
        "and",
        "or",
        "not(",
        "if(",
        ",",
        "selected(",
        "count-selected(",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_tokens, min_size=1, max_size=12).map(" ".join))
def test_parse_print_parse_round_trip_on_text(text: str) -> None:
    try:
        tree = parse(text)
    except ExpressionSyntaxError:
        return
    printed = to_source(tree)
    assert parse(printed) == tree
    assert to_source(parse(printed)) == printed
