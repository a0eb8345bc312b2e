"""The filter language: every grammar rule, null semantics, and every error message."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from clm_research.derived import dataset_table
from clm_research.expressions import (
    And,
    BoolColumn,
    Compare,
    ExpressionError,
    InList,
    IsNull,
    Not,
    Or,
    check_against_table,
    columns,
    evaluate,
    parse,
)


@pytest.fixture()
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sex": pd.array(["female", "male", None, "female"], dtype="string"),
            "age": pd.array([20, 35, 50, None], dtype="Int64"),
            "on_art": pd.array([True, False, True, None], dtype="boolean"),
            "vl_tested": pd.array([10, 5, 3, 0], dtype="Int64"),
            "vl_suppressed": pd.array([9, 6, None, 0], dtype="Int64"),
            "date": pd.to_datetime(["2024-01-05", "2024-02-01", "2024-03-01", None]),
        }
    )


def rows(expr: str, frame: pd.DataFrame) -> list[int]:
    return list(frame.index[evaluate(parse(expr), frame)])


def test_parse_tree_shapes() -> None:
    assert parse("age >= 25") == Compare("age", ">=", 25)
    assert parse("sex == 'female'") == Compare("sex", "==", "female")
    assert parse('sex != "male"') == Compare("sex", "!=", "male")
    assert parse("on_art") == BoolColumn("on_art")
    assert parse("on_art == true") == Compare("on_art", "==", True)
    assert parse("age is null") == IsNull("age")
    assert parse("age IS NOT NULL") == IsNull("age", negate=True)
    assert parse("sex in ['a', 'b']") == InList("sex", ("a", "b"))
    assert parse("sex not in ['a']") == InList("sex", ("a",), negate=True)
    assert parse("not on_art") == Not(BoolColumn("on_art"))
    # and binds tighter than or
    assert parse("a or b and c") == Or(BoolColumn("a"), And(BoolColumn("b"), BoolColumn("c")))
    assert parse("(a or b) and c") == And(Or(BoolColumn("a"), BoolColumn("b")), BoolColumn("c"))
    assert parse("wait > 1.5") == Compare("wait", ">", 1.5)
    assert parse("x > -3") == Compare("x", ">", -3)


def test_columns_read() -> None:
    assert columns(parse("vl_suppressed <= vl_tested and not (sex == 'x' or age is null)")) == {
        "vl_suppressed",
        "vl_tested",
        "sex",
        "age",
    }


def test_evaluation_by_hand(frame: pd.DataFrame) -> None:
    assert rows("sex == 'female'", frame) == [0, 3]
    assert rows("age >= 35", frame) == [1, 2]
    assert rows("on_art", frame) == [0, 2]
    assert rows("on_art == false", frame) == [1]
    assert rows("sex in ['male', 'other']", frame) == [1]
    assert rows("age is null", frame) == [3]
    assert rows("age is not null and on_art", frame) == [0, 2]
    assert rows("vl_suppressed <= vl_tested", frame) == [0, 3]
    assert rows("date >= '2024-02-01'", frame) == [1, 2]
    assert rows("sex == 'female' or age > 40", frame) == [0, 2, 3]


def test_missing_values_follow_kleene_logic(frame: pd.DataFrame) -> None:
    # row 2 has sex missing: both "sex == 'female'" and its negation are unknown -> not selected
    assert 2 not in rows("sex == 'female'", frame)
    assert 2 not in rows("not sex == 'female'", frame)
    assert 2 not in rows("sex not in ['female']", frame)
    # unknown or true is true; unknown and false is false
    assert 2 in rows("sex == 'female' or age == 50", frame)
    assert 3 not in rows("on_art or age > 100", frame)  # unknown or false -> unknown


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the filter is empty"),
        ("age = 3", "use == for equality"),
        ("age >", "ends too early"),
        ("age == 3 4", "unexpected '4'"),
        ("(age == 3", "expected ')'"),
        ("sex in 'a'", "expected '['"),
        ("age == null", "is null"),
        ("== 3", "expected a column name"),
        ("age like 3", "expected an operator"),
        ("age == ]", "expected a value"),
        ("__import__('os')", "expected an operator"),
        ("age; drop", "unexpected character ';'"),
    ],
)
def test_syntax_errors_say_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "wait_mins > 30",
            "unknown column 'wait_mins' in dataset 'interviews'; known columns: interview_id",
        ),
        (
            "sex == 'woman'",
            "'woman' is not an allowed value of 'sex'; allowed: 'female', 'male', 'other'",
        ),
        (
            "key_population in ['sexworker']",
            "'sexworker' is not an allowed value of 'key_population'",
        ),
        ("age == 'old'", "column 'age' is integer; 'old' is not a integer value"),
        ("on_art == 1", "column 'on_art' is boolean; 1 is not a boolean value"),
        ("sex > 'female'", "> needs a number or date column"),
        ("sex", "not a yes/no column"),
        ("age < sex", "cannot compare 'age' (integer) with 'sex' (category)"),
    ],
)
def test_semantic_errors_against_the_data_model(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        check_against_table(parse(text), dataset_table("interviews"))


def test_ordinal_scale_and_derived_columns_are_accepted() -> None:
    interviews = dataset_table("interviews")
    check_against_table(parse("treated_with_respect >= 4"), interviews)  # a 1-5 scale
    check_against_table(parse("clm_active and district == 'X'"), interviews)  # derived columns


def test_no_python_eval(frame: pd.DataFrame) -> None:
    # attribute access and calls are not part of the language
    for text in ("sex.upper() == 'F'", "age + 1 > 3", "os.system"):
        with pytest.raises(ExpressionError):
            parse(text)


def test_arithmetic_precedence_missing_and_division_by_zero() -> None:
    import pandas as pd

    from clm_research.expressions import evaluate_arithmetic, parse_arithmetic

    f = pd.DataFrame({"a": [6.0, None, 4.0], "b": [2.0, 1.0, 0.0], "c d": [1.0, 1.0, 1.0]})
    # 6 - 2 * 2 = 2 (not 8); a-1 is a minus b; backticks quote a header with a space
    out = evaluate_arithmetic(parse_arithmetic("a - b * 2 + `c d` - -1"), f)
    assert out.iloc[0] == 6 - 2 * 2 + 1 + 1 and pd.isna(out.iloc[1])
    assert evaluate_arithmetic(parse_arithmetic("a-1"), f).iloc[0] == 5
    ratio = evaluate_arithmetic(parse_arithmetic("a / b"), f)
    assert ratio.iloc[0] == 3 and pd.isna(ratio.iloc[2])  # 4 / 0: missing, never infinity


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a +", "ends too early"),
        ("a b", "unexpected 'b'"),
        ("(a + b", "missing ')'"),
        ("a + 'x'", "arithmetic allows numbers, columns"),
        ("a == b", "join terms with"),
    ],
)
def test_arithmetic_errors(text: str, message: str) -> None:
    from clm_research.expressions import ExpressionError, parse_arithmetic

    with pytest.raises(ExpressionError, match=re.escape(message)):
        parse_arithmetic(text)
