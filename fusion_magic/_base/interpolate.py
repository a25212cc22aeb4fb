"""Fill `{name}` in a `%%fusion` prompt from the user's namespace, leaving everything else alone.

Only a brace pair around a plain name (or a dotted attribute path such as `{_fusion.answer}`)
is a placeholder, and only when that name holds data. Everything else stays exactly as written:
unknown names, braces in pasted code (dicts, sets, comprehensions, JSON, f-strings), LaTeX
(`\\frac{a}{b}`, `x^{n}`) and lone braces. `{{` and `}}` are escapes for a literal brace. A
regex does the work rather than `str.format`, which would raise on the first brace it did not like.

    interpolate("Summarise:\\n{df}\\nin {n} bullets", {"df": frame, "n": 3})
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_CELL_CHARS", "MAX_CHARS", "MAX_COLUMNS", "MAX_ROWS", "interpolate", "to_prompt_text"]

MAX_ROWS = 20  # table rows shown for a DataFrame or Series
MAX_COLUMNS = 12  # table columns shown for a DataFrame
MAX_CELL_CHARS = 80  # characters per table cell
MAX_CHARS = 20_000  # characters per substituted value (about 5k tokens): a prompt costs money

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\}")
# A brace that belongs to LaTeX (\frac{a}{b}, x^{n}, a_{i}), not to us.
_NOT_OURS_BEFORE = re.compile(r"(\\[A-Za-z]+\*?|[\^_}])$")
# An f-string literal opened earlier on the same line and not closed yet: its braces are code.
_OPEN_FSTRING = re.compile(r"""(?<![\w])(?:[rR]?[fF]|[fF][rR])("|')(?:\\.|(?!\1).)*$""")


def interpolate(template: str, namespace: Mapping[str, Any]) -> str:
    """Replace each `{name}` (or `{name.attr}`) by that variable, formatted for a prompt.

    DataFrames and Series become bounded Markdown tables; long values are cut with a note.
    Names that are missing, private attributes, modules, functions and classes stay as written.
    A `{{` ... `}}` pair gives literal braces; an unpaired `}}` (nested JSON) stays as written.
    """
    tokens = list(_TOKEN.finditer(template))
    escapes = _paired_escapes(template, tokens)
    out: list[str] = []
    end = 0
    for i, match in enumerate(tokens):
        out.append(template[end : match.start()])
        end = match.end()
        token = match.group(0)
        if i in escapes:
            out.append(token[0])
        elif match.group(1) is None or _in_code(template, match.start()):
            out.append(token)
        else:
            out.append(_substitute(token, match.group(1), namespace))
    out.append(template[end:])
    return "".join(out)


def _paired_escapes(template: str, tokens: list[re.Match[str]]) -> set[int]:
    'Indexes of the `{{` and `}}` tokens that pair up; the others are code (`{"a": {"b": 1}}`).'
    pairs: set[int] = set()
    opened: list[int] = []
    for i, match in enumerate(tokens):
        token = match.group(0)
        if match.group(1) is not None or _in_code(template, match.start(), latex=False):
            continue
        if token == "{{":
            opened.append(i)
        elif opened:
            pairs.update((opened.pop(), i))
    return pairs


def _in_code(template: str, position: int, *, latex: bool = True) -> bool:
    "True when the brace at ``position`` is in an f-string on its line (or, with ``latex``, follows LaTeX)."
    before = template[template.rfind("\n", 0, position) + 1 : position]
    return bool((latex and _NOT_OURS_BEFORE.search(before)) or _OPEN_FSTRING.search(before))


def _substitute(token: str, path: str, namespace: Mapping[str, Any]) -> str:
    found, value = _lookup(path, namespace)
    if not found or _is_code(value):
        return token
    try:
        return to_prompt_text(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not stop the cell; keep the braces
        return token


def _lookup(path: str, namespace: Mapping[str, Any]) -> tuple[bool, Any]:
    name, *attrs = path.split(".")
    if name not in namespace:
        return False, None
    value = namespace[name]
    for attr in attrs:
        if attr.startswith("_"):  # dunders and private state are not prompt material
            return False, None
        try:
            value = getattr(value, attr)
        except Exception:  # noqa: BLE001 - a property may raise anything; then it is not a placeholder
            return False, None
    return True, value


def _is_code(value: Any) -> bool:
    # `{os}` or `{print}` in a prompt is code that happens to match a name, never a wish to paste a repr.
    return inspect.ismodule(value) or inspect.isclass(value) or inspect.isroutine(value)


def to_prompt_text(value: Any) -> str:
    """``value`` as prompt text: tables for pandas objects, ``str()`` otherwise, at most `MAX_CHARS`."""
    pandas = sys.modules.get("pandas")  # never import pandas just to find out it was not used
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return _truncate(_frame_table(value))
    if pandas is not None and isinstance(value, pandas.Series):
        return _truncate(_frame_table(value.to_frame(name=value.name if value.name is not None else "value")))
    return _truncate(value if isinstance(value, str) else str(value))


def _truncate(text: str, limit: int = MAX_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit:,} more characters not included]"


def _cell(value: Any) -> str:
    text = " ".join(str(value).split()).replace("|", "\\|")
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def _frame_table(frame: Any) -> str:
    """A Markdown table of at most `MAX_ROWS` x `MAX_COLUMNS`, with notes for what was left out."""
    rows, columns = frame.shape
    shown = frame.iloc[:MAX_ROWS, :MAX_COLUMNS]
    # A default 0..n-1 index says nothing; any other index (names, dates) is data worth showing.
    with_index = not _is_default_index(frame.index)
    header = ([_cell(frame.index.name or "")] if with_index else []) + [_cell(c) for c in shown.columns]
    if not header:
        return f"(empty table: {rows} rows, {columns} columns)"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in zip(shown.index, shown.itertuples(index=False, name=None), strict=True):
        cells = ([_cell(label)] if with_index else []) + [_cell(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    if rows > MAX_ROWS:
        notes.append(f"{rows - MAX_ROWS} more rows")
    if columns > MAX_COLUMNS:
        notes.append(f"{columns - MAX_COLUMNS} more columns")
    if notes:
        lines.append(f"({', '.join(notes)} not shown; {rows} rows x {columns} columns in total)")
    elif rows == 0:
        lines.append("(no rows)")
    return "\n".join(lines)


def _is_default_index(index: Any) -> bool:
    pandas = sys.modules["pandas"]
    return isinstance(index, pandas.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None
