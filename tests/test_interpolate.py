"""`{name}` interpolation of `%%fusion` prompts: variables in, everything else left as written."""

from __future__ import annotations

import math
import os
from types import SimpleNamespace

import pandas as pd
import pytest

from fusion_magic._base.interpolate import MAX_CHARS, MAX_COLUMNS, MAX_ROWS, interpolate, to_prompt_text

NS = {
    "name": "Ada",
    "n": 3,
    "x": 1,
    "y": 2,
    "a": 10,
    "b": 20,
    "obj": SimpleNamespace(answer="forty-two", inner=SimpleNamespace(deep="down")),
    "nothing": None,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello {name}", "Hello Ada"),
        ("{name}", "Ada"),
        ("{n} bullets, {n} times", "3 bullets, 3 times"),
        ("Say {obj.answer}", "Say forty-two"),
        ("Go {obj.inner.deep}", "Go down"),
        ("value: {nothing}", "value: None"),
        ("multi\nline {name}\n", "multi\nline Ada\n"),
        ("{name}!{n}", "Ada!3"),
    ],
)
def test_variables_are_substituted(template: str, expected: str) -> None:
    assert interpolate(template, NS) == expected


@pytest.mark.parametrize(
    "template",
    [
        "{unknown}",
        "Hello {unknown} and {also_missing.attr}",
        "{obj.missing}",
        "{obj._private}",
        "{obj.__class__}",
        "def f(): return {'a': 1}",
        "squares = {x: y for x, y in pairs}",
        "{x: y}",
        '{"name": "Ada", "n": 3}',
        '[{"a": {"b": [1, 2]}}]',
        "{ name }",
        "{name }",
        "{1}",
        "{0name}",
        "{}",
        "{",
        "}",
        "}{",
        "{name",
        "name}",
        "{{{",
        "{{",
        "}}",
        "}}{{",
        "{{ never closed",
        'config = {"a": {"b": {"c": 1}}}',
        "if (x) { if (y) { z(); }}",
        'print(f"{{literal}}")',
        "\\frac{a}{b}",
        "$\\frac{x}{y} + x^{n} + a_{b}$",
        "\\mathrm{name}",
        "\\begin{a} x \\end{a}",
        'print(f"hello {name}")',
        "msg = f'{x} and {y}'",
        'rf"{name}" and Rf"{n}"',
        "for k in {x, y}: pass",
        "{name.}",
        "{.name}",
        "{name..attr}",
        "{name[0]}",
        "{name!r}",
        "{name:>10}",
        "a { b } c",
        "\\{name\\}",
    ],
)
def test_code_and_unknown_names_stay_as_written(template: str) -> None:
    assert interpolate(template, NS) == template


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{x}}", "{x}"),
        ("{{name}}", "{name}"),
        ("{{ }}", "{ }"),
        ("{{x}} and {{y}}", "{x} and {y}"),
        ("{{ {{x}} }}", "{ {x} }"),
        ("{{{name}}}", "{Ada}"),
        ("keep {{literal}} but fill {name}", "keep {literal} but fill Ada"),
        ('json: {{"k": {n}}}', 'json: {"k": 3}'),
    ],
)
def test_double_braces_escape(template: str, expected: str) -> None:
    assert interpolate(template, NS) == expected


def test_fstring_protection_ends_with_the_string() -> None:
    # Inside the f-string the braces are code; after it closes they are placeholders again.
    assert interpolate('f"{name}" then {name}', NS) == 'f"{name}" then Ada'
    assert interpolate("print(f'{x}')\nNext line: {x}", NS) == "print(f'{x}')\nNext line: 1"


def test_words_ending_in_f_are_not_fstrings() -> None:
    assert interpolate('elf "{name}"', NS) == 'elf "Ada"'


@pytest.mark.parametrize("value", [os, print, int, SimpleNamespace, math.sqrt, "abc".upper])
def test_modules_functions_and_classes_are_not_pasted(value: object) -> None:
    assert interpolate("use {thing}", {"thing": value}) == "use {thing}"


def test_namespace_entries_named_like_code_still_work_when_they_hold_data() -> None:
    assert interpolate("{print}", {"print": "text"}) == "text"


def test_a_failing_str_keeps_the_placeholder() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    assert interpolate("x {b}", {"b": Broken()}) == "x {b}"


def test_a_failing_property_keeps_the_placeholder() -> None:
    class Thing:
        @property
        def value(self) -> str:
            raise KeyError("nope")

    assert interpolate("{t.value}", {"t": Thing()}) == "{t.value}"


def test_long_values_are_cut_with_a_note() -> None:
    text = "x" * (MAX_CHARS + 1234)
    out = interpolate("start {text} end", {"text": text})
    assert out.startswith("start " + "x" * MAX_CHARS + "\n[... 1,234 more characters not included]")
    assert out.endswith(" end")
    assert len(out) < MAX_CHARS + 100


def test_values_at_the_limit_are_not_cut() -> None:
    text = "y" * MAX_CHARS
    assert interpolate("{text}", {"text": text}) == text


def test_dataframe_becomes_a_markdown_table() -> None:
    df = pd.DataFrame({"city": ["Paris", "Rome"], "pop_m": [2.1, 2.8]})
    assert interpolate("Data:\n{df}", {"df": df}) == (
        "Data:\n| city | pop_m |\n|---|---|\n| Paris | 2.1 |\n| Rome | 2.8 |"
    )


def test_dataframe_with_a_meaningful_index_shows_it() -> None:
    df = pd.DataFrame({"v": [1, 2]}, index=pd.Index(["a", "b"], name="key"))
    assert to_prompt_text(df) == "| key | v |\n|---|---|\n| a | 1 |\n| b | 2 |"


def test_big_dataframe_is_bounded_with_notes() -> None:
    df = pd.DataFrame({f"c{i}": range(100) for i in range(MAX_COLUMNS + 3)})
    text = to_prompt_text(df)
    lines = text.splitlines()
    assert len(lines) == 2 + MAX_ROWS + 1
    assert lines[0].count("|") == MAX_COLUMNS + 1
    assert f"c{MAX_COLUMNS - 1}" in lines[0] and f"c{MAX_COLUMNS}" not in lines[0]
    assert lines[-1] == f"(80 more rows, 3 more columns not shown; 100 rows x {MAX_COLUMNS + 3} columns in total)"


def test_table_cells_are_one_line_escaped_and_short() -> None:
    df = pd.DataFrame({"text": ["a|b\nc", "z" * 500]})
    lines = to_prompt_text(df).splitlines()
    assert lines[2] == "| a\\|b c |"
    assert len(lines[3]) < 100 and lines[3].endswith("… |")


def test_series_becomes_a_two_column_table() -> None:
    s = pd.Series([1, 2], index=["x", "y"], name="score")
    assert to_prompt_text(s) == "|  | score |\n|---|---|\n| x | 1 |\n| y | 2 |"


def test_unnamed_series_and_empty_frames() -> None:
    assert to_prompt_text(pd.Series([5])) == "| value |\n|---|\n| 5 |"
    assert to_prompt_text(pd.DataFrame({"a": []})) == "| a |\n|---|\n(no rows)"
    assert to_prompt_text(pd.DataFrame()) == "(empty table: 0 rows, 0 columns)"


def test_dataframe_attribute_paths_work() -> None:
    df = pd.DataFrame({"q": ["why?"]})
    assert interpolate("{df.shape}", {"df": df}) == "(1, 1)"


def test_interpolation_never_touches_the_namespace() -> None:
    ns = dict(NS)
    interpolate("{name} {obj.answer} {{x}}", ns)
    assert ns == NS
