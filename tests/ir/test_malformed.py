"""Bad IR text: always an IRParseError naming the line, the column and what was wrong.

The expected position of each error is found independently of the parser, by searching the text
for the offending token (``at``) or by taking the end of the text (``END``).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcomp.ir import GcompError, IRParseError, parse, verify

VALID = """\
graph @f(%x: f32[3,4], %w: f32[4] state) {
  %0: f32[3,4] = exp(%x)                  # model.py:12
  %1: f32[3] = reduce_sum(%0) {axes=[1]}  # model.py:13
  return %0, %1
  update %w <- %w
}
"""
END = "end"  # the error is just past the last non-blank character


def sub(old: str, new: str, text: str = VALID) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def position(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based line and column of the start of the ``occurrence``-th ``needle`` in ``text``."""
    at = -1
    for _ in range(occurrence):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def end_position(text: str) -> tuple[int, int]:
    stripped = text.rstrip()
    return stripped.count("\n") + 1, len(stripped.rsplit("\n", 1)[-1]) + 1


def case(name, text, where, message, occurrence=1):
    """``where``: a substring starting at the error, END, or an explicit (line, column)."""
    return pytest.param(text, where, occurrence, message, id=name)


CASES = [
    case("empty text", "", (1, 1), r"empty IR text; expected 'graph @name"),
    case("whitespace only", "  \n\t\n   ", (1, 1), r"empty IR text"),
    case("truncated after 'graph'", "graph", END, r"text ends early; expected '@'"),
    case("truncated in a type", VALID[:VALID.index(",4]")], END,
         r"ends early; expected .*','.*']'"),
    case("truncated in a node", VALID[:VALID.index("(%x)")], END, r"ends early; expected '\('"),
    case("truncated in attributes", VALID[:VALID.index("[1]}") + 2], END,
         r"ends early; expected ',', ']'"),
    case("truncated before '}'", VALID[:VALID.rindex("}")], END,
         r"ends early; expected 'update', '}'"),
    case("unknown op", sub("exp(", "exq("), "exq", r"unknown op 'exq' \(did you mean .*\bexp\b"),
    case("unknown dtype in a parameter", sub("%w: f32[4]", "%w: f33[4]"), "f33",
         r"unknown dtype 'f33'; known dtypes: bool, u8"),
    case("unknown dtype in an attribute",
         "graph @f() {\n  %0: f32[2] = full() {shape=[2], value=1.0, dtype=f99}\n  return\n}\n",
         "f99", r"unknown dtype 'f99'"),
    case("undefined operand", sub("exp(%x)", "exp(%y)"), "%y",
         r"value %y is used before it is defined"),
    case("operand used before its definition", sub("exp(%x)", "exp(%1)"), "%1",
         r"value %1 is used before it is defined"),
    case("undefined value returned", sub("return %0, %1", "return %0, %9"), "%9",
         r"%9 is used before it is defined"),
    case("undefined value in an update", sub("<- %w", "<- %7"), "%7",
         r"%7 is used before it is defined"),
    case("value defined twice", sub("%1: f32[3]", "%0: f32[3]"), "%0", r"value %0 is defined twice",
         2),
    case("parameter defined twice", sub("%w: f32[4] state", "%x: f32[4] state"), "%x",
         r"value %x is defined twice", 2),
    case("result shape does not match the rule", sub("%0: f32[3,4]", "%0: f32[4,3]"), "%0",
         r"exp gives f32\[3,4\] here, but the text says f32\[4,3\]"),
    case("result dtype does not match the rule", sub("%1: f32[3]", "%1: f64[3]"), "%1",
         r"reduce_sum gives f32\[3\] here, but the text says f64\[3\]"),
    case("too many results", sub("%1: f32[3] =", "%1: f32[3], %2: f32[3] ="), "reduce_sum",
         r"reduce_sum has 1 result\(s\), the text declares 2"),
    case("wrong arity", sub("exp(%x)", "exp(%x, %x)"), "exp", r"exp takes 1 operand\(s\), got 2"),
    case("unknown attribute", sub("{axes=[1]}", "{axes=[1], foo=1}"), "foo",
         r"reduce_sum has no attribute 'foo' \(attributes: axes, keepdims\)"),
    case("missing required attribute", sub(" {axes=[1]}", ""), "reduce_sum",
         r"reduce_sum: missing attribute 'axes'"),
    case("attribute of the wrong kind", sub("axes=[1]", "axes=1.5"), "axes",
         r"attribute axes=1.5 is not a valid ints"),
    case("bool attribute given an int", sub("axes=[1]", "axes=[1], keepdims=3"), "keepdims",
         r"keepdims=3 is not a valid bool"),
    case("dtype attribute given a string",
         'graph @f() {\n  %0: f32[2] = full() {shape=[2], value=1.0, dtype="f32"}\n  return\n}\n',
         "dtype", r"dtype='f32' is not a valid dtype"),
    case("word that is no literal", sub("axes=[1]", "axes=[one]"), "one",
         r"unexpected word 'one' in an attribute"),
    case("attribute given twice", sub("axes=[1]", "axes=[1], axes=[0]"), "axes",
         r"attribute axes given twice", 2),
    case("bad number literal", sub("axes=[1]", "axes=[1.2.3]"), ".3]",
         r"unexpected character '\.'"),
    case("bad exponent", sub("axes=[1]", "axes=[1e]"), "1e]", r"malformed number '1e'"),
    case("double minus", sub("axes=[1]", "axes=[--1]"), "--1", r"malformed number '--1'"),
    case("bad number in a type", sub("f32[3,4] = exp", "f32[3,4x] = exp"), "x]",
         r"unexpected 'x'; expected ',', ']'"),
    case("integer too long for Python", sub("f32[4] state", "f32[" + "9" * 5000 + "] state"), "999",
         r"integer literal of 5000 digits is too long"),
    case("negative dimension", sub("f32[4] state", "f32[-4] state"), "-4",
         r"negative dimension -4 in a type"),
    case("unterminated string", sub("{axes=[1]}", '{axes="abc}'), '"abc',
         r"unterminated string"),
    case("string broken by a newline", sub("{axes=[1]}", '{axes="a\nb"}'), '"a',
         r"unterminated string"),
    case("NUL byte", sub("exp(%x)", "exp(%x\x00)"), "\x00", r"unexpected character '\\x00'"),
    case("invalid UTF-8", VALID.encode() + b"\xff\xfe\x00garbage", (7, 1),
         r"IR text is not UTF-8 \(invalid start byte at byte \d+\)"),
    case("invalid UTF-8 inside a line", b"graph @f(\x00\xc3(", (1, 11), r"not UTF-8"),
    case("update of a non-state value", sub("update %w <- %w", "update %x <- %0"), "%x",
         r"update target %x is not a state input", 3),
    case("update of a node result", sub("update %w <- %w", "update %1 <- %0"), "%1",
         r"update target %1 is not a state input", 3),
    case("state updated twice", sub("update %w <- %w", "update %w <- %w\n  update %w <- %w"),
         "%w", r"state %w is updated twice", 4),
    case("update of the wrong type", sub("update %w <- %w", "update %w <- %0"), "%0",
         r"update of %w: f32\[4\] cannot take f32\[3,4\]", 4),
    case("missing return", sub("  return %0, %1\n", ""), "update",
         r"unexpected 'update'; expected 'return'"),
    case("stray tokens after '}'", VALID + "junk", "junk",
         r"unexpected 'junk'; expected end of text"),
    case("a second graph", VALID + VALID, "graph", r"unexpected 'graph'; expected end of text", 2),
    case("missing '@'", sub("graph @f(", "graph f("), "f(", r"unexpected 'f'; expected '@'"),
    case("misspelt 'state'", sub("f32[4] state", "f32[4] sate"), "sate", r"unexpected 'sate'"),
    case("comment on its own line", sub("  return", "  # note\n  return"), "# note",
         r"unexpected '# note'; expected 'return'"),
    case("operands without parentheses", sub("exp(%x)", "exp %x"), "%x",
         r"unexpected '%x'; expected '\('", 2),
    case("element count mismatch", sub("%1: f32[3] = reduce_sum(%0) {axes=[1]}",
                                       "%1: f32[5] = reshape(%0) {shape=[5]}"), "reshape",
         r"reshape: cannot reshape f32\[3,4\] \(12 elements\) to \[5\]"),
    case("contraction out of range", sub("%1: f32[3] = reduce_sum(%0) {axes=[1]}",
                                         "%1: f32[3] = dot_general(%0, %w) {contract=[[2, 0]]}"),
         "dot_general", r"dot_general: dims \(2, 0\) out of range"),
    case("lists nested too deeply", sub("axes=[1]", "axes=" + "[" * 500 + "]" * 500),
         "[" * 435 + "]", r"attribute lists nested deeper than 64"),  # at the 66th '['

    case("zero stride", "graph @f(%x: f32[1,1,4], %k: f32[1,1,2]) {\n"
         "  %0: f32[1,1,3] = convolution(%x, %k) {stride=[0], padding=[[0, 0]], "
         "lhs_dilation=[1], rhs_dilation=[1]}\n  return %0\n}\n", "convolution",
         r"strides and dilations must be >= 1"),
    case("concatenate of zero-dim values", "graph @f(%x: f32[]) {\n"
         "  %0: f32[] = concatenate(%x, %x) {axis=0}\n  return %0\n}\n", "concatenate",
         r"zero-dim operands cannot be concatenated"),
]


@pytest.mark.parametrize("text, where, occurrence, message", CASES)
def test_malformed_text_reports_line_column_and_reason(text, where, occurrence, message):
    with pytest.raises(IRParseError) as info:
        parse(text)
    err = info.value
    assert isinstance(err, GcompError)
    if where == END:
        want = end_position(text)
    elif isinstance(where, tuple):
        want = where
    else:
        want = position(text, where, occurrence)
    assert (err.line, err.column) == want, str(err)
    assert re.search(message, str(err)), str(err)
    assert str(err).startswith(f"line {err.line}, column {err.column}: ")


# -- fuzzing: mutated valid texts ---------------------------------------------------------------
SEEDS = [
    VALID,
    """\
graph @step(%x: f32[2,1,5], %k: f32[3,1,2] state, %n: i64[] state, %key: u32[2]) {
  %0: f32[2,3,4] = convolution(%x, %k) {stride=[1], padding=[[0, 0]], \
lhs_dilation=[1], rhs_dilation=[1]}
  %1: f32[2,3,2] = reduce_window(%0) {kind="max", window=[1, 1, 2], stride=[1, 1, 2], \
padding=[[0, 0], [0, 0], [0, 0]], base_dilation=[1, 1, 1], window_dilation=[1, 1, 1]}
  %2: f32[2,2] = constant() {value=[[1, -2.5], [1e+20, -0.0]], dtype=f32}
  %3: f32[2,3,2] = pad(%1) {low=[0, 0, 0], high=[0, 0, 0], interior=[0, 0, 0], value=-inf}
  %4: i64[] = full() {shape=[], value=1, dtype=i64}
  %5: i64[] = add(%n, %4)  # optim.py:3
  %6: u32[3,2] = random_split(%key) {num=3}
  %7: bool[2,3,2] = lt(%3, %1)
  %8: f32[2,3,2] = select(%7, %1, %3)
  %9: f32[3,2,2] = transpose(%8) {perm=[1, 0, 2]}
  return %9, %2, %6
  update %n <- %5
  update %k.grad <- %k
}
""",
    """\
graph @train(%x: f32[4,3], %w: f32[3] state) {
  %0: f32[4] = dot_general(%x, %w) {contract=[[1, 0]]}  # model.py:1
  %1: f32[] = reduce_sum(%0) {axes=[0]}                 # model.py:2
  %2: f32[] = full() {shape=[], value=1.0, dtype=f32}
  %3: f32[3] = grad(%1, %2, %w)
  %4: f32[3] = sub(%w, %3)
  %5: f32[12] = reshape(%x) {shape=[12]}
  %6: f32[2,4] = slice(%5) {start=[0], limit=[8], stride=[1]}
  %7: i32[2,4] = iota() {shape=[2, 4], dim=1, dtype=i32}
  %8: f32[2,4] = cast(%7) {dtype=f32}
  %9: f32[4,4] = concatenate(%6, %8) {axis=0}
  return %1, %9
  update %w <- %4
}
""",
]
# characters that make mutations likely to land near valid syntax
ALPHABET = "%@:=,()[]{}<-#\"\\ \n\t0123456789.eEfiuxb_-+abcdefghijklmnopqrstuvwxyz\x00\u00e9\u2028"


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        n = len(text)
        at = draw(st.integers(0, n))
        how = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        if how == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 8)):]
        elif how == "insert":
            text = text[:at] + draw(st.text(ALPHABET, min_size=1, max_size=4)) + text[at:]
        elif how == "replace":
            text = text[:at] + draw(st.sampled_from(ALPHABET)) + text[at + 1:]
        else:  # repeat a chunk, which defines values twice or updates twice
            length = draw(st.integers(1, 40))
            text = text[:at + length] + text[at:at + length] + text[at + length:]
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_text_parses_or_raises_a_parse_error(text):
    try:
        g = parse(text)
    except IRParseError as e:
        assert 1 <= e.line <= text.count("\n") + 1
        assert 1 <= e.column <= len(text.split("\n")[e.line - 1]) + 1
        return
    verify(g)  # whatever parses is a sound graph
    assert str(parse(str(g))) == str(g)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_escape_as_another_exception(data):
    try:
        parse(data)
    except IRParseError:
        pass
    try:
        parse(VALID.encode()[:40] + data)
    except IRParseError:
        pass
