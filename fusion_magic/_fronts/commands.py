"""`%fusion` subcommands for the session's settings and listings: config, presets, models, widget, costs, cache.

Each takes the magic as a `fusion_magic._fronts.args.Host` and the rest of the line. The subcommands
over results (rejudge, compare, show, diff, serve) are `fusion_magic._fronts.result_commands`. Errors
raised here as `FusionError` are turned into a one-line `UsageError` by the caller.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import os
from typing import Any

from IPython.core.error import UsageError

from .._base.config import PRESETS, get_preset
from .._base.endpoint import DEFAULT_BASE_URL, resolve_endpoint
from .._base.errors import ConfigError, FusionError, MissingKeyError
from .._base.settings import MAGIC_SETTINGS
from .._render.facts import plural
from .._values.ledger import ledger
from . import display, session
from .args import Host, flags, parse

__all__ = ["cache", "config", "costs", "models", "presets", "widget"]


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise FusionError("this table needs pandas: pip install pandas") from None
    return pd


# -- config -----------------------------------------------------------------------------------------
def config(magics: Host, rest: str) -> None:
    "`%fusion config`: show the effective settings; with flags, set session defaults; `reset` clears them."
    if not rest:
        print(_describe(magics))
        return
    if rest in ("reset", "--reset"):
        session.clear_defaults()
        magics.session_format = None
        print("session defaults cleared")
        return
    args = parse(rest, "%fusion config")
    if args.output or args.refresh:
        raise UsageError("-o and --refresh apply to one run; put them on the %%fusion line")
    given = {k: v for k, v in flags(args).items() if v is not None}
    merged = {**magics.settings()[0], **given}
    from .._fusion import Fusion

    try:
        Fusion(**merged)  # check now, so a typo fails here rather than in the next cell
    except MissingKeyError:
        pass  # the key may be set later; `%fusion config` shows it as missing
    except FusionError as exc:
        raise UsageError(f"not saved: {exc}") from None
    session.set_defaults(**given)
    if args.format:
        magics.session_format = args.format
    shown = {**given, **({"format": args.format} if args.format else {})}
    print("session defaults: " + ", ".join(f"{k}={v!r}" for k, v in shown.items()))


def _describe(magics: Host) -> str:
    "The effective settings, one per line with where each came from; the key itself never appears."
    values, sources = magics.settings()
    name = values.get("preset", "quality")
    try:
        preset = get_preset(name)
    except ConfigError as exc:
        preset, name = None, f"{name} (invalid: {exc})"
    rows = [("preset", name, sources.get("preset", "built-in"))]
    if "judges" in values:
        rows.append(("judges", f"{values['judges']} (the first chairs)", sources["judges"]))
    for key in ("panel", *(() if "judges" in values else ("judge",))):  # a jury's chair is the judge
        if key in values:
            rows.append((key, str(values[key]), sources[key]))
        elif preset is not None:
            members = preset.panel if key == "panel" else (preset.judge,)
            rows.append((key, ", ".join(m.name for m in members), f"preset {preset.name}"))
    # Listed settings first (they always have a value), then the others that something set.
    shown = [s for s in MAGIC_SETTINGS if s.name not in _SHOWN_ELSEWHERE]
    for s in sorted(shown, key=lambda s: not s.listed):
        if s.name in values or s.listed:
            value = values.get(s.name, s.default)
            rows.append((s.name, s.unset if value is None else s.show(value), sources.get(s.name, "built-in")))
    fmt = magics.session_format or magics.format
    rows.append(
        (
            "format",
            fmt,
            "%fusion config" if magics.session_format else ("built-in" if magics.format == "widget" else "%config"),
        )
    )
    rows += _endpoint_rows(values, sources, preset)
    width = max(len(r[0]) for r in rows)
    lines = [f"  {k:<{width}}  {v}  [{s}]" for k, v, s in rows]
    return "fusion settings (flag > %fusion config > %config FusionMagics > env > built-in):\n" + "\n".join(lines)


# `%fusion config` shows these with the preset and the endpoint, not in the list of settings.
_SHOWN_ELSEWHERE = ("preset", "panel", "judge", "base_url", "api_key_env")


def _endpoint_rows(values: dict[str, Any], sources: dict[str, str], preset: Any) -> list[tuple[str, str, str]]:
    base = values.get("base_url")
    if base is None and preset is not None and preset.endpoint == "local":
        return [
            ("endpoint", "the local model on 127.0.0.1 (started on first use)", f"preset {preset.name}"),
            ("api key", "not needed", "local model"),
        ]
    source = sources.get("base_url") or ("env FUSION_BASE_URL" if os.environ.get("FUSION_BASE_URL") else "built-in")
    try:
        endpoint = resolve_endpoint(base, None, values.get("api_key_env"))
    except MissingKeyError as exc:
        label = (base or os.environ.get("FUSION_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        return [("endpoint", label, source), ("api key", f"missing: {exc}", "env")]
    except ConfigError as exc:
        return [("endpoint", f"invalid: {exc}", source)]
    if endpoint.key_source:
        key = (f"set (from {endpoint.key_source})", "env" if endpoint.key_source != "argument" else "argument")
    else:
        key = ("none (this server needs none)", "env")
    return [("endpoint", endpoint.label, source), ("api key", *key)]


# -- listings ---------------------------------------------------------------------------------------
def presets(magics: Host, rest: str) -> Any:
    "`%fusion presets`: one row per preset, every panel member shown (`.to_frame()` for a DataFrame)."
    from .._render.tables import PresetTable

    return PresetTable(PRESETS.values())


def models(magics: Host, rest: str) -> Any:
    """`%fusion models [--refresh] [PATTERN]`: the endpoint's models, context length, USD per 1M tokens.

    The list is cached on disk for a day; `--refresh` fetches it again.
    """
    pd = _pandas()
    fusion = magics.build(magics.settings()[0])
    words = rest.split()
    refresh = "--refresh" in words
    rest = " ".join(w for w in words if w != "--refresh")
    listed = fusion.list_models(refresh=refresh)  # the local preset's server starts here
    assert fusion.endpoint is not None
    endpoint = fusion.endpoint
    pattern = rest.lower()
    wildcard = any(c in pattern for c in "*?[")

    def matches(model_id: str) -> bool:
        # `gpt*` finds `openai/gpt-4o`: the pattern is tried on the whole id and on the part after the vendor.
        names = {model_id.lower(), model_id.lower().split("/", 1)[-1]}
        return any(fnmatch.fnmatch(n, pattern) if wildcard else pattern in n for n in names)

    rows = [
        {
            "id": m.id,
            "context_length": m.context_length,
            "prompt_usd_per_1m": None if m.prompt is None else round(m.prompt * 1e6, 6),
            "completion_usd_per_1m": None if m.completion is None else round(m.completion * 1e6, 6),
        }
        for m in sorted(listed.values(), key=lambda m: m.id)
        if not pattern or matches(m.id)
    ]
    if not rows:  # one line, not an empty table header
        print(f"no model matches {rest!r} ({len(listed)} listed by {endpoint.label})")
        return None
    return pd.DataFrame(rows, columns=["id", "context_length", "prompt_usd_per_1m", "completion_usd_per_1m"])


def widget(magics: Host, rest: str) -> Any:
    "`%fusion widget`: the interactive panel, starting from the effective preset."
    try:
        from .widget import FusionWidget
    except ImportError as exc:
        raise UsageError(f"the widget needs ipywidgets ({exc.name} is missing): pip install ipywidgets") from None
    values = magics.settings()[0]
    options = {k: values[k] for k in ("timeout",) if k in values}
    return FusionWidget(values.get("preset", "quality"), **options)


# -- costs and cache --------------------------------------------------------------------------------
def costs(magics: Host, rest: str) -> None:
    "`%fusion costs`: the session ledger as a table with totals, and a cumulative cost chart."
    book = ledger()
    if not display.in_kernel(magics.shell):
        if len(book):
            with contextlib.suppress(FusionError):  # no pandas: the totals line still says it all
                print(book.to_frame().to_string(index=False))
        print(repr(book))
        return
    from IPython.display import Image
    from IPython.display import display as show

    show(book)
    from .._render.ledger import NOTHING_SPENT, nothing_spent

    if nothing_spent(book):  # no chart: it would be a flat line at zero
        print(f"{NOTHING_SPENT}.")
    elif len(book):
        try:
            figure = book.chart()
        except FusionError:
            return  # no matplotlib: the table is enough
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=96)
        show(Image(data=buffer.getvalue(), format="png"))


def cache(magics: Host, rest: str) -> None:
    "`%fusion cache info|clear`."
    from .._engine.cache import Cache

    action = rest or "info"
    store = Cache()
    if action == "info":
        info = store.info()
        print(
            f"answer cache {info['path']}: {plural(info['entries'], 'answer')}, {info['size_bytes'] / 1024:.0f} KB, "
            f"{plural(info['hits'], 'hit')}, ${info['saved_usd']:.4f} saved"
        )
    elif action == "clear":
        removed = store.clear()
        print(f"cleared {removed} cached answers from {store.path}")
    else:
        raise UsageError(f"unknown cache command {action!r}; use %fusion cache info or %fusion cache clear")
    store.close()
