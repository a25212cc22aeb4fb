"""The `sql` tool: DuckDB over the user's frames, read-only, locked, capped, time-limited.

The escapes are what a hostile model would write: read a file, write one, attach a database,
install or load an extension, unlock the configuration, read the environment, reach a URL. Each must
come back as a `ToolError` carrying the engine's refusal, leave nothing behind, and the next query
must still work.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pandas as pd
import pytest

from fusion_magic._base.errors import ConfigError
from fusion_magic._tools.base import ToolError
from fusion_magic._tools.sql import sql_tool

pytest.importorskip("duckdb")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sales() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": ["EU", "US", "EU", "APAC", "US", "EU"],
            "amount": [10.0, 20.5, 30.25, 5.0, 7.5, 1.0],
            "units": [1, 2, 3, 4, 5, 6],
        }
    )


def run(tool, query: str) -> str:
    return asyncio.run(tool.run({"query": query}))


def test_description_lists_columns_types_rows_and_samples(sales):
    customers = pd.DataFrame({"name": ["Ada", "Bo"], "since": pd.to_datetime(["2020-01-01", "2021-06-30"])})
    tool = sql_tool({"sales": sales, "customers": customers})
    assert tool.name == "sql" and tool.parameters["required"] == ["query"]
    text = tool.description
    assert "sales (6 rows)" in text and "customers (2 rows)" in text
    assert "region VARCHAR" in text and "amount DOUBLE" in text and "units BIGINT" in text
    assert "since TIMESTAMP" in text
    assert "| EU | 10.0 | 1 |" in text and "| Ada |" in text  # sample rows
    assert "| EU | 1.0 | 6 |" not in text  # only a few of them
    assert tool.spec()["function"]["name"] == "sql"


def test_query_result_matches_pandas(sales):
    out = run(
        sql_tool({"sales": sales}), "SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY region"
    )
    expected = sales.groupby("region").amount.sum()
    for region, total in expected.items():
        assert f"| {region} | {total} |" in out
    assert out.splitlines()[0] == "| region | total |" and "(3 rows)" in out


def test_rows_and_characters_are_capped():
    big = pd.DataFrame({"n": range(5000), "text": ["x" * 300] * 5000})
    tool = sql_tool({"big": big}, max_rows=50, max_chars=3000)
    out = run(tool, "SELECT * FROM big")
    assert len(out) < 3200 and "more characters not shown" in out
    out = run(tool, "SELECT n FROM big")
    assert "| 49 |" in out and "| 50 |" not in out and "only the first 50 rows" in out
    cell = run(tool, "SELECT text FROM big LIMIT 1")
    assert "x" * 300 not in cell and "…" in cell  # one cell cannot fill the result either


def test_empty_result_and_statement_without_rows(sales):
    tool = sql_tool({"sales": sales})
    assert "(no rows)" in run(tool, "SELECT * FROM sales WHERE amount > 1e9")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("SELECT * FROM read_csv('{readme}')", "file system operations are disabled"),
        ("SELECT * FROM read_text('{readme}')", "file system operations are disabled"),
        ("SELECT * FROM read_parquet('{tmp}/x.parquet')", "file system operations are disabled"),
        ("SELECT * FROM '{tmp}/data.csv'", "disabled"),
        ("SELECT * FROM glob('{root}/*')", "file system operations are disabled"),
        ("COPY (SELECT * FROM sales) TO '{tmp}/out.csv'", "file system operations are disabled"),
        ("COPY sales TO '{tmp}/out.parquet' (FORMAT parquet)", "file system operations are disabled"),
        ("EXPORT DATABASE '{tmp}/export'", "file system operations are disabled"),
        ("ATTACH '{tmp}/other.duckdb' AS other", "file system operations are disabled"),
        ("ATTACH ':memory:' AS mem2; SELECT 1", ""),  # an in-memory attach reads nothing: allowed or refused
        ("INSTALL httpfs", "disabled"),
        ("LOAD httpfs", "disabled"),
        ("FORCE INSTALL httpfs FROM 'http://127.0.0.1:9'", "disabled"),
        ("SELECT * FROM read_csv('https://example.com/data.csv')", "disabled"),
        ("SELECT * FROM 's3://bucket/data.parquet'", "disabled"),
        ("SET enable_external_access = true", "locked"),
        ("SET lock_configuration = false", "locked"),
        ("RESET lock_configuration", "locked"),
        ("SET memory_limit = '100GB'", "locked"),
        ("SET temp_directory = '{tmp}'", "locked"),
        ("PRAGMA enable_profiling", "locked"),
        ("SELECT getenv('HOME')", "getenv"),
    ],
)
def test_escapes_are_refused_with_the_engines_message(sales, tmp_path, query, words):
    tool = sql_tool({"sales": sales})
    text = query.format(readme=ROOT / "README.md", tmp=tmp_path, root=ROOT)
    if not words:  # harmless either way; must not break the next query
        try:
            run(tool, text)
        except ToolError:
            pass
    else:
        with pytest.raises(ToolError) as caught:
            run(tool, text)
        message = str(caught.value)
        assert words in message, message
        assert "Error" in message  # the engine's own words: "Permission Error: ...", "Invalid Input Error: ..."
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert "| 6 |" in run(tool, "SELECT count(*) AS n FROM sales")


def test_the_environment_is_not_readable(sales, monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-sql-tool-must-not-see-this")
    tool = sql_tool({"sales": sales})
    for query in ("SELECT getenv('OPENROUTER_API_KEY')", "SELECT * FROM duckdb_settings() WHERE value LIKE '%sk-or%'"):
        try:
            out = run(tool, query)
        except ToolError as exc:
            out = str(exc)
        assert "sk-or-v1-sql-tool" not in out


def test_the_users_frames_are_not_changed(sales):
    before = sales.copy()
    tool = sql_tool({"sales": sales})
    for query in (
        "UPDATE sales SET amount = 0",
        "DELETE FROM sales",
        "INSERT INTO sales VALUES ('X', 1, 1)",
        "ALTER TABLE sales ADD COLUMN y INT",
    ):
        with pytest.raises(ToolError):
            run(tool, query)
    run(tool, "DROP VIEW sales")  # only this query's own view goes
    run(tool, "CREATE TABLE scratch AS SELECT 1 AS x")
    pd.testing.assert_frame_equal(sales, before)
    assert "| 6 |" in run(tool, "SELECT count(*) AS n FROM sales")  # each query starts from the frames
    with pytest.raises(ToolError, match="scratch"):
        run(tool, "SELECT * FROM scratch")  # nothing a query made survives it


def test_time_limit_interrupts_and_the_next_query_works(sales):
    tool = sql_tool({"sales": sales}, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(ToolError, match="time limit"):
        run(tool, "SELECT count(*) FROM range(1000000000000) a, range(1000) b WHERE a.range * b.range = 7")
    assert time.monotonic() - started < 30
    assert "| 6 |" in run(tool, "SELECT count(*) AS n FROM sales")


def test_a_query_past_the_memory_limit_fails_without_spilling_to_disk(sales, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # DuckDB's default spill folder is `.tmp` here, in the user's folder
    tool = sql_tool({"sales": sales}, memory_limit="64MB", timeout_s=60)
    with pytest.raises(ToolError, match="Out of Memory"):
        run(tool, "SELECT count(*) FROM (SELECT range, md5(range::VARCHAR) m FROM range(5000000) ORDER BY m)")
    assert list(tmp_path.iterdir()) == []
    assert "| 6 |" in run(tool, "SELECT count(*) AS n FROM sales")


def test_a_cancelled_call_interrupts_its_query(sales):
    tool = sql_tool({"sales": sales}, timeout_s=120)

    async def scenario() -> float:
        task = asyncio.create_task(tool.run({"query": "SELECT count(*) FROM range(1000000000000) a, range(1000) b"}))
        await asyncio.sleep(0.3)
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 30  # asyncio.run waits for the worker thread: the query was stopped


def test_concurrent_members_share_nothing(sales):
    tool = sql_tool({"sales": sales})

    async def many() -> list[str]:
        queries = [f"CREATE TABLE t AS SELECT {i} AS v; SELECT v FROM t" for i in range(6)]
        return await asyncio.gather(*(tool.run({"query": q}) for q in queries))

    for i, out in enumerate(asyncio.run(many())):
        assert f"| {i} |" in out


def test_identity_follows_the_data(sales):
    same = sql_tool({"sales": sales.copy()}).identity
    assert sql_tool({"sales": sales}).identity == same
    changed = sales.copy()
    changed.loc[3, "amount"] = 5.5
    assert sql_tool({"sales": changed}).identity != same
    assert sql_tool({"other": sales}).identity != same
    assert sql_tool({"sales": sales.iloc[::-1]}).identity != same  # order matters (LIMIT, first rows)


def test_series_and_odd_column_names(sales):
    numbers = pd.DataFrame({0: [1, 2], "b c": [3, 4]})
    tool = sql_tool({"amounts": sales["amount"], "numbers": numbers})
    assert "amounts (6 rows): amount DOUBLE" in tool.description
    assert "| 3 |" in run(tool, 'SELECT sum("0") AS s FROM numbers')
    assert list(numbers.columns) == [0, "b c"]  # the user's frame keeps its labels


def test_arrow_tables_and_record_batches():
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"x": [1, 2, 3]})
    tool = sql_tool({"t": table, "b": table.to_batches()[0]})
    assert "| 6 | 3 |" in run(tool, "SELECT sum(x) AS s, (SELECT count(*) FROM b) AS n FROM t")
    assert sql_tool({"t": pa.table({"x": [1, 2, 4]}), "b": table.to_batches()[0]}).identity != tool.identity


def test_polars_frames():
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"y": [1.5, 2.5], "name": ["u", "v"]})
    tool = sql_tool({"p": frame})
    assert "p (2 rows): y DOUBLE, name VARCHAR" in tool.description
    assert "| 4.0 |" in run(tool, "SELECT sum(y) AS s FROM p")


@pytest.mark.parametrize(
    ("frames", "words"),
    [({}, "at least one"), ({"1bad": pd.DataFrame()}, "table name"), ({"rows": [1, 2]}, "not a DataFrame")],
)
def test_bad_input_is_a_config_error(frames, words):
    with pytest.raises(ConfigError, match=words):
        sql_tool(frames)


@pytest.mark.parametrize("arguments", [{}, {"query": ""}, {"query": 3}, {"sql": "SELECT 1"}])
def test_missing_query_is_a_tool_error(sales, arguments):
    with pytest.raises(ToolError, match="query"):
        asyncio.run(sql_tool({"sales": sales}).run(arguments))


def test_a_syntax_error_is_the_engines_message(sales):
    with pytest.raises(ToolError, match="Parser Error"):
        run(sql_tool({"sales": sales}), "SELEC 1")
