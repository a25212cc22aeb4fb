"""`sql`: the user's DataFrames, read-only, through DuckDB.

    sql_tool({"sales": sales_df, "customers": customers_df})

One `sql` tool whose description lists each table's columns, types, row count and a few sample
rows. Each query runs on its own new in-memory DuckDB connection (concurrent members never share
state, and nothing a query creates outlives it) where the frames are registered as views (DuckDB
reads them in place: the user's objects are neither copied nor changed), then the configuration is
locked before the model's text is run:

- ``enable_external_access = false``: no file, no URL, no ATTACH, no COPY/EXPORT, no extension
  INSTALL or LOAD; ``autoinstall/autoload_known_extensions = false``, no community extensions;
- ``lock_configuration = true``: no SET/RESET/PRAGMA can undo any of it;
- ``memory_limit`` and ``threads`` bound what one query may take, with no temporary directory
  (DuckDB would otherwise spill to ``.tmp`` in the current folder); results are capped (rows and
  characters) and a timer interrupts a query after ``timeout_s``.

Whatever the engine refuses (a file read, a write, an attach, an install, a locked setting) is the
tool result, in the engine's words (a `ToolError`). DuckDB runs in a worker thread, never on the
event loop. pandas DataFrames and Series are registered as they are; Polars frames and Arrow tables
through Arrow (zero-copy where the types allow).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Mapping
from typing import Any

from .._base.errors import ConfigError
from .base import Tool, ToolError
from .output import clip, one_line

__all__ = ["sql_tool"]

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_CELL = 120  # characters per result cell
_LOCKED = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    # An in-memory database spills to `.tmp` in the CURRENT folder (the user's) by default, access
    # disabled or not: no temporary directory, so a query past `memory_limit` fails instead.
    "temp_directory": "",
}


def sql_tool(
    frames: Mapping[str, Any],
    *,
    max_rows: int = 100,
    max_chars: int = 8_000,
    timeout_s: float = 10.0,
    memory_limit: str = "1GB",
    threads: int = 2,
    sample_rows: int = 3,
) -> Tool:
    """A read-only `sql` tool over ``frames`` (name -> pandas/Polars/Arrow frame). `ConfigError` for bad input."""
    try:
        import duckdb
    except ImportError:
        raise ConfigError(
            "data: the sql tool needs DuckDB: pip install 'fusion-magic[data]' (or pip install duckdb)"
        ) from None
    if not frames:
        raise ConfigError("data: give at least one DataFrame, e.g. data={'sales': df}")
    tables = {name: _as_table(name, frame) for name, frame in frames.items()}
    settings: dict[str, Any] = {**_LOCKED, "memory_limit": memory_limit, "threads": threads}

    def connect() -> Any:
        con = duckdb.connect(":memory:", config=settings)
        for name, table in tables.items():
            con.register(name, table)
        con.execute("SET lock_configuration = true")
        return con

    described = _describe(connect, tables, sample_rows)

    async def run(arguments: dict[str, Any]) -> str:
        query = arguments.get("query") if isinstance(arguments, dict) else None
        if not isinstance(query, str) or not query.strip():
            raise ToolError("sql needs a `query`: one DuckDB SQL statement, e.g. SELECT count(*) FROM sales")
        holder: dict[str, Any] = {}
        try:
            return await asyncio.to_thread(_execute, connect, query, holder, max_rows, max_chars, timeout_s, duckdb)
        except asyncio.CancelledError:  # the member's deadline: stop the query rather than let it run on
            if holder.get("con") is not None:
                _interrupt(holder["con"])
            raise

    description = (
        "Run one read-only SQL query (DuckDB dialect) over the user's data and get the result as a table "
        f"(at most {max_rows} rows; aggregate or LIMIT for more). Files, URLs, extensions and settings are "
        f"not available. Tables:\n\n{described}"
    )
    parameters = {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "A DuckDB SQL query over the tables listed"}},
        "required": ["query"],
    }
    identity = _fingerprint(tables, (max_rows, max_chars, memory_limit, threads, duckdb.__version__))
    return Tool("sql", clip(description, 12_000), parameters, run, identity=identity)


def _as_table(name: str, frame: Any) -> Any:
    "What DuckDB registers for ``frame``: pandas as it is, Polars/Arrow as an Arrow table."
    if not isinstance(name, str) or not _TABLE_NAME.match(name):
        raise ConfigError(
            f"data: {name!r} is not a usable table name (letters, digits and _, not starting with a digit)"
        )
    module = type(frame).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        if isinstance(frame, pd.Series):
            frame = frame.to_frame(name=frame.name if frame.name is not None else "value")
        if isinstance(frame, pd.DataFrame):
            if not all(isinstance(c, str) for c in frame.columns):  # DuckDB needs text column names
                frame = frame.rename(columns=str, copy=False) if _pandas_has_copy_kw() else frame.rename(columns=str)
            return frame
    if module == "polars" and hasattr(frame, "to_arrow"):
        return frame.to_arrow()
    if module == "pyarrow" and type(frame).__name__ in ("Table", "RecordBatch"):
        return frame
    raise ConfigError(f"data: {name} is a {type(frame).__name__}, not a DataFrame (pandas, Polars or Arrow)")


def _pandas_has_copy_kw() -> bool:
    import pandas as pd

    return int(pd.__version__.split(".")[0]) < 3


def _describe(connect: Any, tables: dict[str, Any], sample_rows: int) -> str:
    con = connect()
    try:
        blocks = []
        for name in tables:
            columns = con.execute(f'DESCRIBE "{name}"').fetchall()
            count = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            listed = ", ".join(f"{c[0]} {c[1]}" for c in columns[:80])
            more = f", … ({len(columns) - 80} more columns)" if len(columns) > 80 else ""
            result = con.execute(f'SELECT * FROM "{name}" LIMIT {int(sample_rows)}')
            sample = _table([d[0] for d in result.description][:12], [r[:12] for r in result.fetchall()], cell=40)
            blocks.append(f"{name} ({count:,} rows): {listed}{more}\nSample rows:\n{sample}")
        return "\n\n".join(blocks)
    finally:
        con.close()


def _execute(
    connect: Any, query: str, holder: dict[str, Any], max_rows: int, max_chars: int, timeout_s: float, duckdb: Any
) -> str:
    con = holder["con"] = connect()
    timer = threading.Timer(timeout_s, _interrupt, (con,))
    timer.daemon = True
    timer.start()
    try:
        result = con.execute(query)
        if result.description is None:
            return "(the statement ran; it returns no rows)"
        names = [d[0] for d in result.description]
        rows = result.fetchmany(max_rows + 1)
    except duckdb.InterruptException:
        raise ToolError(f"the query was stopped after {timeout_s:g} s (time limit); simplify it or aggregate") from None
    except duckdb.Error as exc:
        if not timer.is_alive():
            raise ToolError(f"the query was stopped after {timeout_s:g} s (time limit)") from None
        raise ToolError(_engine_message(exc)) from None
    finally:
        timer.cancel()
        con.close()
    more = len(rows) > max_rows
    text = _table(names, rows[:max_rows], cell=_CELL)
    if more:
        text += f"\n(only the first {max_rows} rows are shown; aggregate or add LIMIT/OFFSET for the rest)"
    elif not rows:
        text += "\n(no rows)"
    else:
        text += f"\n({len(rows)} row{'s' if len(rows) != 1 else ''})"
    return clip(text, max_chars)


def _interrupt(con: Any) -> None:
    "Stop the connection's running query; a connection already closed has nothing to stop."
    try:
        con.interrupt()
    except Exception:  # noqa: BLE001 - closed meanwhile (the query ended just then)
        pass


def _engine_message(exc: BaseException) -> str:
    "The engine's error, its first lines (DuckDB puts the hint with the position on the next line)."
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return clip("\n".join(lines[:6]) or one_line(exc), 1_500)


def _cell(value: Any, limit: int) -> str:
    text = "NULL" if value is None else " ".join(str(value).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(names: list[str], rows: list[tuple[Any, ...]], *, cell: int) -> str:
    lines = ["| " + " | ".join(_cell(n, cell) for n in names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cell(v, cell) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _fingerprint(tables: dict[str, Any], extra: tuple[Any, ...]) -> str:
    "A hash of every table's name, schema and content: a changed frame never matches an old cached step."
    digest = hashlib.sha256(repr(extra).encode())
    for name, table in sorted(tables.items()):
        digest.update(name.encode() + b"\x00")
        if type(table).__module__.split(".")[0] == "pandas":
            import pandas as pd

            digest.update(repr(list(zip(map(str, table.columns), map(str, table.dtypes), strict=True))).encode())
            try:
                hashed = pd.util.hash_pandas_object(table, index=True)
            except TypeError:  # unhashable cells (lists, dicts): their text stands for them
                hashed = pd.util.hash_pandas_object(table.astype(str), index=True)
            digest.update(hashed.to_numpy().tobytes())
        else:  # Arrow: its schema and buffers
            digest.update(str(table.schema).encode())
            for column in table.columns:
                for chunk in getattr(column, "chunks", [column]):
                    for buffer in chunk.buffers():
                        if buffer is not None:
                            digest.update(memoryview(buffer))
    return "sql:" + digest.hexdigest()[:24]
