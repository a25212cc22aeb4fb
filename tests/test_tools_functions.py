"""The user's own functions as tools: schemas from signatures and docstrings, validated calls, text results."""

from __future__ import annotations

import asyncio
import threading
from typing import Literal

import pandas as pd
import pytest

from fusion_magic._base.errors import ConfigError
from fusion_magic._tools.base import MAX_OUTPUT_CHARS, ToolError
from fusion_magic._tools.functions import function_tool


def revenue(region: str, year: int = 2024, currency: Literal["EUR", "USD"] = "EUR") -> float:
    """Total revenue of a region in a year.

    Sums invoiced amounts, refunds excluded.

    Args:
        region: the sales region, e.g. "EMEA".
        year (int): the calendar year,
            four digits.
        currency: the currency of the result.

    Returns:
        The revenue.
    """
    if region == "nowhere":
        raise ValueError("no such region: nowhere\nsecond line of detail")
    return {"EMEA": 10.5}.get(region, 0.0) * (year - 2020)


async def top_customers(n: int, *, min_orders: int = 1) -> pd.DataFrame:
    """Largest customers.

    :param n: how many customers to list
    :param min_orders: only customers with at least this many orders
    :returns: a table
    """
    await asyncio.sleep(0)
    return pd.DataFrame({"customer": [f"c{i}" for i in range(n)], "orders": range(n)})


def numpy_style(threshold: float) -> list[int]:
    """Items above a threshold.

    Parameters
    ----------
    threshold : float
        the lower bound, exclusive
    """
    return [i for i in range(5) if i > threshold]


def call(tool, **arguments):
    return asyncio.run(tool.run(arguments))


def test_schema_from_signature_and_google_docstring():
    tool = function_tool(revenue)
    assert tool.name == "revenue"
    assert tool.description == "Total revenue of a region in a year.\n\nSums invoiced amounts, refunds excluded."
    props = tool.parameters["properties"]
    assert tool.parameters["type"] == "object" and tool.parameters["required"] == ["region"]
    assert props["region"] == {"type": "string", "description": 'the sales region, e.g. "EMEA".'}
    assert props["year"] == {"type": "integer", "default": 2024, "description": "the calendar year, four digits."}
    assert props["currency"]["enum"] == ["EUR", "USD"]
    assert "title" not in str(tool.parameters)
    assert tool.spec()["function"]["parameters"] is tool.parameters


def test_sphinx_and_numpy_docstrings():
    tool = function_tool(top_customers)
    assert tool.description == "Largest customers."
    assert tool.parameters["properties"]["n"]["description"] == "how many customers to list"
    assert tool.parameters["properties"]["min_orders"]["description"].startswith("only customers")
    assert tool.parameters["required"] == ["n"]
    numpy = function_tool(numpy_style)
    assert numpy.parameters["properties"]["threshold"]["description"] == "the lower bound, exclusive"
    assert numpy.description == "Items above a threshold."


def test_arguments_are_validated_and_coerced():
    tool = function_tool(revenue)
    assert call(tool, region="EMEA", year="2022") == "21.0"
    for arguments, words in [
        ({}, "region: Field required"),
        ({"region": "EMEA", "year": "last year"}, "year: Input should be a valid integer"),
        ({"region": "EMEA", "currency": "GBP"}, "currency"),
        ({"region": "EMEA", "rm_rf": True}, "rm_rf: Extra inputs are not permitted"),
    ]:
        with pytest.raises(ToolError, match=words):
            call(tool, **arguments)


def test_sync_functions_run_off_the_event_loop():
    seen: list[int] = []

    def where() -> str:
        "Which thread am I on?"
        seen.append(threading.get_ident())
        return "here"

    async def scenario() -> str:
        loop_thread = threading.get_ident()
        out = await function_tool(where).run({})
        assert seen and seen[0] != loop_thread
        return out

    assert asyncio.run(scenario()) == "here"


def test_async_functions_are_awaited_and_frames_become_bounded_tables():
    out = call(function_tool(top_customers), n=50)
    assert out.startswith("| customer | orders |") and "| c0 | 0 |" in out
    assert "30 more rows not shown" in out and "| c49 |" not in out


def test_an_exception_is_a_one_line_tool_error():
    with pytest.raises(ToolError) as caught:
        call(function_tool(revenue), region="nowhere")
    assert str(caught.value) == "ValueError: no such region: nowhere"
    assert "Traceback" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "(no result)"),
        ("plain", "plain"),
        ({"a": 1, "b": [1, 2]}, '{"a": 1, "b": [1, 2]}'),
        (3.5, "3.5"),
        ({1, 2}, "{1, 2}"),
    ],
)
def test_results_become_text(value, text):
    def give():
        return value

    assert call(function_tool(give)) == text


def test_long_results_are_capped():
    def long() -> str:
        return "y" * (MAX_OUTPUT_CHARS * 3)

    out = call(function_tool(long))
    assert len(out) < MAX_OUTPUT_CHARS + 100 and "more characters not shown" in out


def test_functions_a_model_cannot_call_are_config_errors():
    def star(*values):
        return values

    def kw(**options):
        return options

    for fn, words in [
        (star, "values"),
        (kw, "options"),
        (lambda x: x, "not a usable tool name"),
        (42, "not a function"),
    ]:
        with pytest.raises(ConfigError, match=words):
            function_tool(fn)
    assert function_tool(lambda x: x, name="identity").name == "identity"


def test_identity_changes_with_the_code():
    def f(x: int) -> int:
        return x + 1

    first = function_tool(f).identity

    def f(x: int) -> int:  # noqa: F811 - the user redefines it in the next cell
        return x + 2

    assert function_tool(f).identity != first
    assert function_tool(revenue).identity == function_tool(revenue).identity


def test_positional_only_and_unannotated_parameters():
    def add(a, b=2, /):
        return a + b

    tool = function_tool(add)
    assert tool.parameters["required"] == ["a"]
    assert call(tool, a=1) == "3"
