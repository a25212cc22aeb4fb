"""Numbers, labels and summary facts shared by the HTML, Markdown and plain-text views and the widget.

Every helper tolerates odd data (None, strings, NaN) because a display must never fail on a result
that was paid for.
"""

from __future__ import annotations

import math
from typing import Any

from .._base.status import RESPONSE_STATUSES, RESULT_STATUSES
from .._values.sections import titles
from .sanitize import clean_line

__all__ = [
    "DASH",
    "NO_MATH",
    "REJUDGE_HINT",
    "RESULT_LABEL",
    "SECTION_TITLES",
    "STATUS_ICON",
    "STATUS_LABEL",
    "UNKNOWN",
    "attr",
    "call_cost",
    "clean_text_line",
    "cut_short",
    "counts",
    "error_of",
    "estimate_text",
    "fmt_cost",
    "fmt_int",
    "fmt_secs",
    "header_facts",
    "name_of",
    "no_answer_text",
    "notes",
    "num",
    "paid",
    "plural",
    "price_label",
    "reasoning_text",
    "reasoning_title",
    "responses",
    "section_items",
    "status_of",
    "tokens",
    "tool_line",
    "total_cost",
    "total_cost_text",
    "total_tokens",
]

STATUS_ICON = {w.word: icon for w, icon in RESPONSE_STATUSES}
STATUS_LABEL = {w.word: w.label for w, _ in RESPONSE_STATUSES}
RESULT_LABEL = {w.word: w.label for w in RESULT_STATUSES}
SECTION_TITLES = titles()  # name -> title, from the section table
REJUDGE_HINT = "the panel answers are kept; run `%fusion rejudge` to re-run only the judge"
DASH = "–"
UNKNOWN = "unknown"  # a cost that may have been billed but was not reported or priced
# The classes MathJax 2 (`tex2jax_ignore`: nbconvert exports, classic Notebook) and MathJax 3
# (`mathjax_ignore`: JupyterLab, Notebook 7) skip. On an element holding two amounts, "$0.01 ... $0.02"
# would otherwise be typeset as italic maths; an HTML entity does not help, since MathJax reads the
# decoded text. Model text inside stays literal too, so a hostile answer cannot use TeX links either.
NO_MATH = "tex2jax_ignore mathjax_ignore"


def section_items(analysis: Any, name: str) -> list[Any]:
    "The items of one section as objects when the analysis can give them, else as stored."
    try:
        return list(analysis.items(name))
    except Exception:  # a half-built or foreign analysis: show what is there
        return list(attr(analysis, name) or [])


def num(value: Any) -> float | None:
    """A finite float, or None for anything else (None, text, NaN, booleans)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def fmt_cost(value: Any, estimated: bool = False) -> str:
    """Dollars with enough digits for sub-cent calls: $0, <$0.0001, $0.0123, $1.23."""
    x = num(value)
    if x is None:
        return DASH
    if x == 0:
        text = "$0"
    elif abs(x) < 0.0001:
        text = "<$0.0001"
    elif abs(x) < 1:
        text = f"${x:.4f}"
    else:
        text = f"${x:,.2f}"
    return f"~{text}" if estimated and x else text


def fmt_secs(value: Any, compact: bool = False) -> str:
    """A duration: 850 ms, 2.31 s, 1m 05.0s (no spaces when compact)."""
    x = num(value)
    if x is None:
        return DASH
    sep = "" if compact else " "
    if x < 1:
        return f"{x * 1000:.0f}{sep}ms"
    if x < 60:
        return f"{x:.2f}{sep}s"
    return f"{int(x // 60)}m{sep}{x % 60:04.1f}s"


def plural(count: int, noun: str) -> str:
    "'1 call', '2 calls'."
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def fmt_int(value: Any) -> str:
    """An integer with thousands separators, or a dash."""
    x = num(value)
    return DASH if x is None else f"{int(x):,}"


def attr(obj: Any, name: str, default: Any = None) -> Any:
    """getattr that never raises, for objects that may be half-built."""
    try:
        return getattr(obj, name, default)
    except Exception:
        return default


def tokens(resp: Any) -> float | None:
    """Prompt + completion tokens of one call, or None when the provider reported neither."""
    parts = [num(attr(resp, "prompt_tokens")), num(attr(resp, "completion_tokens"))]
    known = [p for p in parts if p is not None]
    return sum(known) if known else None


def paid(resp: Any) -> float | None:
    """What this call cost this time: a cache hit cost nothing."""
    return 0.0 if attr(resp, "cached") else num(attr(resp, "cost_usd"))


def call_cost(resp: Any) -> str:
    """One call's cost as shown: "unknown" when it may have been billed but no cost is known, never $0."""
    if attr(resp, "cost_unknown") is True:
        return UNKNOWN
    return fmt_cost(paid(resp), bool(attr(resp, "cost_estimated")))


def total_cost_text(result: Any) -> str:
    """A result's total: "$0.0123", "≥ $0.0123" when some calls' costs are unknown, or "unknown"."""
    value = total_cost(result)
    if value is None:
        return UNKNOWN
    return fmt_cost(value) if attr(result, "cost_complete", True) is not False else f"≥ {fmt_cost(value)}"


def reasoning_text(resp: Any) -> str:
    "What the model thought before answering (``Response.reasoning``), or ''."
    text = attr(resp, "reasoning")
    return text if isinstance(text, str) and text.strip() else ""


def reasoning_title(resp: Any) -> str:
    "'Reasoning (1,234 tokens)' or 'Reasoning (5 lines)': the summary line of the collapsed block."
    count = num(attr(resp, "reasoning_tokens"))
    if count:
        return f"Reasoning ({fmt_int(count)} tokens)"
    return f"Reasoning ({plural(reasoning_text(resp).count(chr(10)) + 1, 'line')})"


def cut_short(resp: Any) -> str:
    "A note for an answer that stopped at max_tokens ('' otherwise)."
    if status_of(resp) == "ok" and attr(resp, "finish_reason") == "length":
        return "cut short: max_tokens reached"
    return ""


def status_of(resp: Any) -> str:
    """The response status as a known key ('failed' for anything unrecognised)."""
    status = str(attr(resp, "status", "failed"))
    return status if status in STATUS_ICON else "failed"


def name_of(resp: Any) -> str:
    """The member's display name, cleaned to one line."""
    return clean_line(attr(resp, "model", "?")) or "?"


def error_of(resp: Any) -> str:
    "Why a call has no answer, without the leading 'MODEL: ' the provider put there (the row names it)."
    error = clean_text_line(attr(resp, "error")) or STATUS_LABEL[status_of(resp)]
    for name in (name_of(resp), clean_text_line(attr(resp, "served_by"))):
        if name and error.startswith(f"{name}: "):
            return error[len(name) + 2 :] or error
    return error


def clean_text_line(value: Any) -> str:
    return clean_line(value, 5000) if value else ""


def responses(result: Any) -> list[Any]:
    """The panel responses as a list, whatever the attribute holds."""
    try:
        return list(attr(result, "responses") or [])
    except TypeError:
        return []


def counts(result: Any) -> dict[str, int]:
    """How many panel members ended in each status."""
    out: dict[str, int] = {}
    for resp in responses(result):
        out[status_of(resp)] = out.get(status_of(resp), 0) + 1
    return out


def total_cost(result: Any) -> float | None:
    try:
        return num(result.cost_usd)
    except Exception:
        return None


def total_tokens(result: Any) -> float | None:
    try:
        return num(result.usage["total_tokens"])
    except Exception:
        return None


def header_facts(result: Any) -> list[str]:
    """The one-line summary after the status: preset, cost, time, tokens, members, cache hits."""
    facts: list[str] = []
    preset = attr(result, "preset")
    if preset:
        facts.append(f"preset {clean_line(preset, 60)}")
    cost = total_cost_text(result)
    estimate = num(attr(result, "estimate_usd"))
    floor = "at least " if attr(result, "estimate_floor") else ""  # members may call tools: more requests
    facts.append(cost + (f" (estimate {floor}{fmt_cost(estimate)})" if estimate is not None else ""))
    facts.append(fmt_secs(attr(result, "elapsed_s")))
    toks = total_tokens(result)
    if toks:
        facts.append(f"{fmt_int(toks)} tokens in+out")
    c = counts(result)
    n = sum(c.values())
    if n:
        facts.append(f"{c.get('ok', 0)}/{n} answered")
    for status in STATUS_LABEL:
        if status == "ok":
            continue
        if c.get(status):
            facts.append(f"{c[status]} {STATUS_LABEL[status]}")
    calls = [*responses(result), *([attr(result, "judge")] if attr(result, "judge") else [])]
    hits = sum(1 for r in calls if attr(r, "cached"))
    if hits:
        facts.append(f"{hits} cached")
    if attr(result, "interrupted") and attr(result, "status") != "interrupted":
        facts.append("interrupted")
    history = attr(result, "history")
    if history and isinstance(history, list):
        facts.append(f"follow-up {len(history)}")  # the number of turns before this one
    return facts


def notes(result: Any) -> list[str]:
    """The result's notes (what the judge's reply lacked, what was dropped), one clean line each."""
    try:
        return [clean_line(str(n), 300) for n in (attr(result, "notes") or []) if str(n).strip()]
    except TypeError:
        return []


def no_answer_text(result: Any) -> str:
    """Why a judged result has no answer, in a few words."""
    if any("no synthesized answer" in n for n in notes(result)):
        return "the judge gave an analysis but no synthesized answer"
    return "the judge returned no answer"


def tool_line(result: Any) -> str | None:
    """Whether the primary model in --tool mode chose to call fusion, as one sentence."""
    tool = attr(result, "tool")
    if not tool:
        return None
    get = tool.get if isinstance(tool, dict) else (lambda key, default=None: default)
    primary = clean_line(get("primary") or "the primary model", 120)
    called = get("called")
    if called is None:
        return f"Tool mode: {primary} (whether it called fusion is unknown)"
    if called:
        return f"Tool mode: {primary} called fusion; the panel's deliberation is below"
    return f"Tool mode: {primary} answered directly without calling fusion"


def estimate_text(est: Any, models: set[str]) -> str:
    "A cost estimate for ``models`` in words: its range, and the models without a price."
    if len(est.unknown) == len(models):
        return "unknown (no prices for these models)"
    text = f"about {fmt_cost(est.total)} ({fmt_cost(est.low)} to {fmt_cost(est.high)})"
    return text + (f", plus unknown for {', '.join(est.unknown)}" if est.unknown else "")


def price_label(model: str, price: Any) -> str:
    "A model with its price per million tokens (prompt/completion), 'free' or 'price unknown'."
    if price is None or not attr(price, "known"):
        return f"{model}  price unknown"
    if attr(price, "free"):
        return f"{model}  free"
    return f"{model}  ${_per_million(price.prompt)}/${_per_million(price.completion)} per 1M"


def _per_million(price: float | None) -> str:
    value = (price or 0.0) * 1e6
    return f"{value:.2f}" if value >= 0.1 or value == 0 else f"{value:.3g}"
