"""A small, safe filter language over column names (never Python ``eval`` of user text).

Grammar (keywords are case-insensitive)::

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | atom
    atom       := "(" expr ")"
                | column "is" ["not"] "null"
                | column ["not"] "in" "[" literal ("," literal)* "]"
                | column op (literal | column)
                | column                       -- a boolean column, true when true
    op         := "==" | "!=" | "<" | "<=" | ">" | ">="
    literal    := number | 'text' | "text" | true | false
    column     := name | `any header text`   -- backticks quote a name with spaces or slashes

Arithmetic (derived columns of a mapping, :func:`parse_arithmetic`)::

    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | number | column | "(" sum ")"

Arithmetic has numbers and columns only (no functions, no text): a missing operand or a
division by zero gives a missing value, never 0 or infinity.

Examples: ``got_all_medicines == false``, ``on_art and vl_result_received is not null``,
``key_population in ['sex_worker', 'msm']``, ``vl_suppressed <= vl_tested``.

Missing values follow SQL/Kleene logic: a comparison with a missing value is unknown, and a
row is selected only when the whole filter is true.

A filter is text from a parameters file, so its size is bounded before anything recurses over
it: at most :data:`MAX_CHARS` characters, :data:`MAX_TERMS` conditions, parentheses and ``not``
nested at most :data:`MAX_DEPTH` deep, and numbers of at most :data:`MAX_NUMBER_DIGITS` digits.
The framework's longest filter has 4 conditions and 2 levels; past these limits the error says
which one was exceeded (not a ``RecursionError`` or Python's integer-conversion limit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from clm_research.errors import CLMError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from clm_research.schema import Table

__all__ = [
    "Expr",
    "Compare",
    "InList",
    "IsNull",
    "BoolColumn",
    "And",
    "Or",
    "Not",
    "ExpressionError",
    "parse",
    "evaluate",
    "check_against_table",
    "columns",
    "Arith",
    "Num",
    "Col",
    "BinOp",
    "Neg",
    "parse_arithmetic",
    "evaluate_arithmetic",
    "arithmetic_columns",
    "MAX_CHARS",
    "MAX_TERMS",
    "MAX_DEPTH",
    "MAX_NUMBER_DIGITS",
]

#: Longest filter (characters).
MAX_CHARS = 2_000
#: Most conditions (comparisons, ``in``/``is null`` tests, boolean columns) in one filter.
MAX_TERMS = 100
#: Deepest nesting of parentheses and ``not``.
MAX_DEPTH = 20
#: Most digits in one number.
MAX_NUMBER_DIGITS = 30

Scalar = int | float | str | bool
Op = Literal["==", "!=", "<", "<=", ">", ">="]


class ExpressionError(CLMError, ValueError):
    """A filter is not valid; the message says where and what is allowed."""


@dataclass(frozen=True)
class ColumnRef:
    name: str


@dataclass(frozen=True)
class Compare:
    column: str
    op: Op
    value: Scalar | ColumnRef


@dataclass(frozen=True)
class InList:
    column: str
    values: tuple[Scalar, ...]
    negate: bool = False


@dataclass(frozen=True)
class IsNull:
    column: str
    negate: bool = False


@dataclass(frozen=True)
class BoolColumn:
    column: str


@dataclass(frozen=True)
class And:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    operand: Expr


Expr = Compare | InList | IsNull | BoolColumn | And | Or | Not

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?)
      | (?P<string>'[^']*'|"[^"]*")
      | (?P<op>==|!=|<=|>=|<|>)
      | (?P<punct>[()\[\],])
      | (?P<arith>[+*/-])
      | (?P<quoted>`[^`]+`)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        assert m is not None  # the pattern's last branch matches any non-space character
        kind = m.lastgroup or "bad"
        tok_text = m.group(kind)
        start = m.start(kind)
        if kind == "bad":
            hint = " (use == for equality)" if tok_text == "=" else ""
            raise ExpressionError(
                f"unexpected character {tok_text!r} at position {start + 1}{hint}; allowed: column "
                "names, numbers, 'text', true/false, == != < <= > >=, in [...], is [not] null, "
                "and/or/not, parentheses"
            )
        if kind == "name" and tok_text.lower() in _KEYWORDS:
            kind, tok_text = "kw", tok_text.lower()
        elif kind == "quoted":
            kind, tok_text = "name", tok_text[1:-1]
        toks.append(_Tok(kind, tok_text, start))
        pos = m.end()
    return toks


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.terms = 0

    def _deeper(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(
                f"parentheses and 'not' nested more than {MAX_DEPTH} deep (position "
                f"{tok.pos + 1}) [rule: expression_depth]; simplify the filter"
            )

    def _peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _take(self) -> _Tok:
        tok = self._peek()
        if tok is None:
            raise ExpressionError("the filter ends too early; expected more after the last word")
        self.i += 1
        return tok

    def _is_kw(self, word: str) -> bool:
        tok = self._peek()
        return tok is not None and tok.kind == "kw" and tok.text == word

    def _expect(self, kind: str, text: str | None = None) -> _Tok:
        if self._peek() is None:
            raise ExpressionError(f"expected {text or kind!r} but the filter ends there")
        tok = self._take()
        if tok.kind != kind or (text is not None and tok.text != text):
            want = text or kind
            raise ExpressionError(
                f"expected {want!r} at position {tok.pos + 1}, found {tok.text!r}"
            )
        return tok

    def parse(self) -> Expr:
        if not self.toks:
            raise ExpressionError("the filter is empty")
        expr = self._or()
        tok = self._peek()
        if tok is not None:
            raise ExpressionError(
                f"unexpected {tok.text!r} at position {tok.pos + 1}; join conditions with and/or"
            )
        return expr

    def _or(self) -> Expr:
        left = self._and()
        while self._is_kw("or"):
            self.i += 1
            left = Or(left, self._and())
        return left

    def _and(self) -> Expr:
        left = self._not()
        while self._is_kw("and"):
            self.i += 1
            left = And(left, self._not())
        return left

    def _not(self) -> Expr:
        if self._is_kw("not"):
            tok = self._take()
            self._deeper(tok)
            inner = self._not()
            self.depth -= 1
            return Not(inner)
        return self._atom()

    def _literal(self) -> Scalar:
        tok = self._take()
        if tok.kind == "number":
            digits = sum(c.isdigit() for c in tok.text)
            if digits > MAX_NUMBER_DIGITS:
                raise ExpressionError(
                    f"a number of {digits:,} digits at position {tok.pos + 1}; at most "
                    f"{MAX_NUMBER_DIGITS} [rule: expression_number]"
                )
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.kind == "string":
            return tok.text[1:-1]
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return tok.text == "true"
        if tok.kind == "kw" and tok.text == "null":
            raise ExpressionError(
                f"compare with null using 'is null' / 'is not null' (position {tok.pos + 1})"
            )
        raise ExpressionError(
            f"expected a value (number, 'text', true or false) at position {tok.pos + 1}, "
            f"found {tok.text!r}"
        )

    def _atom(self) -> Expr:
        tok = self._take()
        if tok.kind == "punct" and tok.text == "(":
            self._deeper(tok)
            inner = self._or()
            self._expect("punct", ")")
            self.depth -= 1
            return inner
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise ExpressionError(
                f"more than {MAX_TERMS} conditions (position {tok.pos + 1}) "
                "[rule: expression_terms]; split the filter or use 'in [...]'"
            )
        if tok.kind != "name":
            raise ExpressionError(
                f"expected a column name at position {tok.pos + 1}, found {tok.text!r}"
            )
        column = tok.text
        nxt = self._peek()
        if nxt is None or (nxt.kind == "kw" and nxt.text in ("and", "or")) or nxt.text == ")":
            return BoolColumn(column)
        if nxt.kind == "kw" and nxt.text == "is":
            self.i += 1
            negate = False
            if self._is_kw("not"):
                self.i += 1
                negate = True
            self._expect("kw", "null")
            return IsNull(column, negate)
        if nxt.kind == "kw" and nxt.text in ("in", "not"):
            negate = nxt.text == "not"
            self.i += 1
            if negate:
                self._expect("kw", "in")
            self._expect("punct", "[")
            values = [self._literal()]
            while (after := self._peek()) is not None and after.text == ",":
                self.i += 1
                values.append(self._literal())
            self._expect("punct", "]")
            return InList(column, tuple(values), negate)
        if nxt.kind == "op":
            self.i += 1
            rhs = self._peek()
            op = cast(Op, nxt.text)  # the tokenizer's operator tokens are exactly the Op values
            if rhs is not None and rhs.kind == "name":
                self.i += 1
                return Compare(column, op, ColumnRef(rhs.text))
            return Compare(column, op, self._literal())
        raise ExpressionError(
            f"after column {column!r} expected an operator (== != < <= > >=), 'in', "
            f"'is null', 'and' or 'or' at position {nxt.pos + 1}, found {nxt.text!r}"
        )


def parse(text: str) -> Expr:
    """Parse a filter into an expression tree.

    Parameters
    ----------
    text
        The filter, e.g. ``"on_art and got_all_medicines == false"``.

    Returns
    -------
    Expr
        An immutable tree of :class:`Compare`, :class:`InList`, :class:`IsNull`,
        :class:`BoolColumn`, :class:`And`, :class:`Or` and :class:`Not` nodes.

    Raises
    ------
    ExpressionError
        With the position and what is allowed there.

    Examples
    --------
    >>> parse("sex == 'female' and age >= 25")
    And(left=Compare(column='sex', op='==', value='female'), right=Compare(column='age', op='>=', value=25))
    """
    if not isinstance(text, str):
        raise ExpressionError(f"a filter must be text, got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise ExpressionError(
            f"the filter has {len(text):,} characters; at most {MAX_CHARS:,} "
            "[rule: expression_length]"
        )
    return _Parser(text).parse()


def columns(expr: Expr) -> set[str]:
    """Every column name the expression reads."""
    match expr:
        case Compare(column=c, value=ColumnRef(name=r)):
            return {c, r}
        case Compare(column=c) | InList(column=c) | IsNull(column=c) | BoolColumn(column=c):
            return {c}
        case And(left=a, right=b) | Or(left=a, right=b):
            return columns(a) | columns(b)
        case Not(operand=a):
            return columns(a)
    raise TypeError(f"not an expression: {expr!r}")  # pragma: no cover


def _literal_fits(col_dtype: str, value: Scalar) -> bool:
    if col_dtype == "boolean":
        return isinstance(value, bool)
    if col_dtype in ("integer", "float"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    # string, category and date columns compare with text (dates as 'YYYY-MM-DD')
    return isinstance(value, str)


def check_against_table(expr: Expr, table: Table) -> None:
    """Check that every column exists in ``table`` and that literals fit the column.

    Raises
    ------
    ExpressionError
        For an unknown column (listing the known ones), a value of the wrong type, a value
        outside a category's allowed values, or an ordering comparison on a category.
    """
    known = ", ".join(table.column_names)
    for name in sorted(columns(expr)):
        if name not in table:
            raise ExpressionError(
                f"unknown column {name!r} in dataset {table.name!r}; known columns: {known}"
            )

    def check_value(column: str, value: Scalar) -> None:
        col = table.column(column)
        if not _literal_fits(col.dtype, value):
            raise ExpressionError(
                f"column {column!r} is {col.dtype}; {value!r} is not a {col.dtype} value"
            )
        if col.allowed is not None and value not in col.allowed:
            allowed = ", ".join(repr(a) for a in col.allowed)
            raise ExpressionError(
                f"{value!r} is not an allowed value of {column!r}; allowed: {allowed}"
            )

    def walk(node: Expr) -> None:
        match node:
            case Compare(column=c, op=op, value=ColumnRef(name=r)):
                a, b = table.column(c).dtype, table.column(r).dtype
                numeric = {"integer", "float"}
                if a != b and not (a in numeric and b in numeric):
                    raise ExpressionError(f"cannot compare {c!r} ({a}) with {r!r} ({b})")
            case Compare(column=c, op=op, value=v) if not isinstance(v, ColumnRef):
                check_value(c, v)
                col = table.column(c)
                if op not in ("==", "!=") and col.dtype in ("boolean", "category", "string"):
                    if col.allowed is None or not all(isinstance(a, int) for a in col.allowed):
                        raise ExpressionError(
                            f"{op} needs a number or date column; {c!r} is {col.dtype} "
                            "(use == / != / in)"
                        )
            case InList(column=c, values=vs):
                for v in vs:
                    check_value(c, v)
            case BoolColumn(column=c):
                if table.column(c).dtype != "boolean":
                    raise ExpressionError(
                        f"{c!r} is {table.column(c).dtype}, not a yes/no column: compare it "
                        f"(e.g. {c} == ...)"
                    )
            case And(left=a, right=b) | Or(left=a, right=b):
                walk(a)
                walk(b)
            case Not(operand=a):
                walk(a)
            case IsNull():
                pass

    walk(expr)


def _operand(series: pd.Series, value: object) -> object:
    import pandas as pd

    if isinstance(value, str) and pd.api.types.is_datetime64_any_dtype(series):
        return pd.Timestamp(value)
    return value


def evaluate(expr: Expr, frame: pd.DataFrame) -> pd.Series:
    """Evaluate ``expr`` on every row of ``frame`` (vectorised).

    Returns
    -------
    pandas.Series
        Plain ``bool``: ``True`` where the filter is true; unknown (missing) counts as false.
    """
    return _eval(expr, frame).fillna(False).astype(bool)


def _eval(expr: Expr, frame: pd.DataFrame) -> pd.Series:
    import operator

    import pandas as pd

    # an operand is a column or a constant; pandas broadcasts the comparison over the rows
    ops: dict[str, Callable[[pd.Series, Any], pd.Series]] = {
        "==": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }

    def col(name: str) -> pd.Series:
        if name not in frame.columns:
            raise ExpressionError(
                f"column {name!r} is not in the data; columns: {', '.join(map(str, frame.columns))}"
            )
        return frame[name]

    def kleene(result: pd.Series, *sources: pd.Series) -> pd.Series:
        out = result.astype("boolean")
        missing = sources[0].isna()
        for s in sources[1:]:
            missing = missing | s.isna()
        return out.mask(missing, pd.NA)

    match expr:
        case Compare(column=c, op=op, value=ColumnRef(name=r)):
            a, b = col(c), col(r)
            return kleene(ops[op](a, b), a, b)
        case Compare(column=c, op=op, value=v):
            a = col(c)
            return kleene(ops[op](a, _operand(a, v)), a)
        case InList(column=c, values=vs, negate=neg):
            a = col(c)
            hit = a.isin([_operand(a, v) for v in vs])
            return kleene(~hit if neg else hit, a)
        case IsNull(column=c, negate=neg):
            nulls = col(c).isna()
            return (~nulls if neg else nulls).astype("boolean")
        case BoolColumn(column=c):
            return col(c).astype("boolean")
        case And(left=a, right=b):
            return _eval(a, frame) & _eval(b, frame)
        case Or(left=a, right=b):
            return _eval(a, frame) | _eval(b, frame)
        case Not(operand=a):
            return ~_eval(a, frame)
    raise TypeError(f"not an expression: {expr!r}")  # pragma: no cover


# --------------------------------------------------------------------------- arithmetic


@dataclass(frozen=True)
class Num:
    """A number in an arithmetic expression."""

    value: float


@dataclass(frozen=True)
class Col:
    """A column in an arithmetic expression."""

    name: str


@dataclass(frozen=True)
class BinOp:
    """``left op right`` with ``op`` one of ``+ - * /``."""

    op: Literal["+", "-", "*", "/"]
    left: Arith
    right: Arith


@dataclass(frozen=True)
class Neg:
    """``-operand``."""

    operand: Arith


Arith = Num | Col | BinOp | Neg


class _ArithParser:
    def __init__(self, text: str) -> None:
        toks: list[_Tok] = []
        for tok in _tokenize(text):
            # "a-1" tokenizes as name, number "-1": in arithmetic the minus is an operator
            if tok.kind == "number" and tok.text.startswith("-") and toks:
                prev = toks[-1]
                if prev.kind in ("name", "number") or prev.text == ")":
                    toks.append(_Tok("arith", "-", tok.pos))
                    tok = _Tok("number", tok.text[1:], tok.pos + 1)
            toks.append(tok)
        self.toks = toks
        self.i = 0

    def _peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def parse(self) -> Arith:
        if not self.toks:
            raise ExpressionError("the expression is empty")
        expr = self._sum()
        tok = self._peek()
        if tok is not None:
            raise ExpressionError(
                f"unexpected {tok.text!r} at position {tok.pos + 1}; join terms with + - * /"
            )
        return expr

    def _sum(self) -> Arith:
        left = self._product()
        while (tok := self._peek()) is not None and tok.kind == "arith" and tok.text in "+-":
            self.i += 1
            left = BinOp(cast(Literal["+", "-"], tok.text), left, self._product())
        return left

    def _product(self) -> Arith:
        left = self._unary()
        while (tok := self._peek()) is not None and tok.kind == "arith" and tok.text in "*/":
            self.i += 1
            left = BinOp(cast(Literal["*", "/"], tok.text), left, self._unary())
        return left

    def _unary(self) -> Arith:
        tok = self._peek()
        if tok is None:
            raise ExpressionError("the expression ends too early; expected a number or column")
        self.i += 1
        if tok.kind == "arith" and tok.text == "-":
            return Neg(self._unary())
        if tok.kind == "number":
            return Num(float(tok.text))
        if tok.kind == "name":
            return Col(tok.text)
        if tok.kind == "punct" and tok.text == "(":
            inner = self._sum()
            close = self._peek()
            if close is None or close.text != ")":
                raise ExpressionError(f"missing ')' for the '(' at position {tok.pos + 1}")
            self.i += 1
            return inner
        raise ExpressionError(
            f"expected a number, a column or '(' at position {tok.pos + 1}, found {tok.text!r}; "
            "arithmetic allows numbers, columns, + - * / and parentheses"
        )


def parse_arithmetic(text: str) -> Arith:
    """Parse an arithmetic expression over columns (``vl_tested - vl_suppressed``).

    Raises
    ------
    ExpressionError
        With the position and what is allowed there.

    Examples
    --------
    >>> parse_arithmetic("a + 2 * b")
    BinOp(op='+', left=Col(name='a'), right=BinOp(op='*', left=Num(value=2.0), right=Col(name='b')))
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, got {type(text).__name__}")
    return _ArithParser(text).parse()


def arithmetic_columns(expr: Arith) -> set[str]:
    """Every column name an arithmetic expression reads."""
    match expr:
        case Col(name=n):
            return {n}
        case Num():
            return set()
        case Neg(operand=a):
            return arithmetic_columns(a)
        case BinOp(left=a, right=b):
            return arithmetic_columns(a) | arithmetic_columns(b)
    raise TypeError(f"not an arithmetic expression: {expr!r}")  # pragma: no cover


def evaluate_arithmetic(expr: Arith, frame: pd.DataFrame) -> pd.Series:
    """Evaluate ``expr`` on every row of ``frame`` as ``float64`` (vectorised).

    A missing operand gives a missing result; so does a division by zero.
    """
    import numpy as np
    import pandas as pd

    def ev(node: Arith) -> pd.Series:
        match node:
            case Num(value=v):
                return pd.Series(v, index=frame.index, dtype="float64")
            case Col(name=n):
                if n not in frame.columns:
                    raise ExpressionError(
                        f"column {n!r} is not in the data; columns: "
                        f"{', '.join(map(str, frame.columns))}"
                    )
                return pd.to_numeric(frame[n], errors="coerce").astype("float64")
            case Neg(operand=a):
                return -ev(a)
            case BinOp(op=op, left=a, right=b):
                x, y = ev(a), ev(b)
                if op == "+":
                    return x + y
                if op == "-":
                    return x - y
                if op == "*":
                    return x * y
                with np.errstate(divide="ignore", invalid="ignore"):
                    return (x / y).where(y != 0)
        raise TypeError(f"not an arithmetic expression: {node!r}")  # pragma: no cover

    return ev(expr)
