"""Small listings the `%fusion` line magic shows: the presets, as a table that never cuts a panel list.

A DataFrame would truncate long cells and show the descriptions' Markdown raw, so the notebook view
is our own HTML (one member per line, descriptions rendered and sanitized) with the DataFrame a
`to_frame()` away.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .facts import NO_MATH
from .sanitize import clean_line, markdown_to_safe_html

if TYPE_CHECKING:
    import pandas as pd

    from .._base.config import Preset

__all__ = ["PresetTable"]

COLUMNS = ["preset", "panel", "judge", "description", "endpoint"]
_STYLE = "text-align:left;vertical-align:top;padding:.2em .8em .2em 0;border:none;background:none"


class PresetTable:
    """The presets: name, every panel member, judge, description, endpoint."""

    def __init__(self, presets: Iterable[Preset]) -> None:
        self.rows = [
            {
                "preset": p.name,
                "panel": [m.name for m in p.panel],
                "judge": p.judge.name,
                "description": p.description,
                "endpoint": p.endpoint or "default",
            }
            for p in presets
        ]

    def to_frame(self) -> pd.DataFrame:
        "One row per preset; `panel` is the members joined with commas."
        import pandas as pd

        return pd.DataFrame([{**r, "panel": ", ".join(r["panel"])} for r in self.rows], columns=COLUMNS)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return "\n".join(
            f"{r['preset']}: {', '.join(r['panel'])} -> judge {r['judge']} ({r['description']})" for r in self.rows
        )

    def _repr_html_(self) -> str:
        head = "".join(f'<th style="{_STYLE};font-weight:600">{c}</th>' for c in COLUMNS)
        body = "".join(f"<tr>{''.join(self._cells(r))}</tr>" for r in self.rows)
        return (
            f'<table class="fusion-presets {NO_MATH}" style="border-collapse:collapse;margin:0">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    @staticmethod
    def _cells(row: dict[str, Any]) -> list[str]:
        panel = "<br>".join(html.escape(clean_line(m)) for m in row["panel"])
        description = markdown_to_safe_html(row["description"], inline=True, limit=2000)
        values = [
            f"<b>{html.escape(row['preset'])}</b>",
            panel,
            html.escape(clean_line(row["judge"])),
            description,
            html.escape(row["endpoint"]),
        ]
        return [f'<td style="{_STYLE}">{v}</td>' for v in values]
