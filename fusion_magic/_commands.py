"""The `%fusion` line magic's subcommands; each takes the `FusionMagics` instance and the rest of the line.

Kept apart from `magic.py` so the magic class stays a thin parser. Errors raised here as
`FusionError` are turned into a one-line `UsageError` by the caller.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import keyword
import os
import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from . import display, session
from ._format import plural
from .config import DEFAULT_BASE_URL, PRESETS, get_preset, resolve_endpoint
from .errors import ConfigError, FusionError, MissingKeyError
from .ledger import ledger
from .result import FusionResult
from .settings import MAGIC_SETTINGS

if TYPE_CHECKING:
    from .magic import FusionMagics

__all__ = ["cache", "compare", "config", "costs", "diff", "models", "presets", "rejudge", "serve", "show", "widget"]


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise FusionError("this table needs pandas: pip install pandas") from None
    return pd


# -- config -----------------------------------------------------------------------------------------
def config(magics: FusionMagics, rest: str) -> None:
    "`%fusion config`: show the effective settings; with flags, set session defaults; `reset` clears them."
    from .magic import _flags, _parse

    if not rest:
        print(_describe(magics))
        return
    if rest in ("reset", "--reset"):
        session.clear_defaults()
        magics.session_format = None
        print("session defaults cleared")
        return
    args = _parse(magics.fusion_cell, rest, "%fusion config")
    if args.output or args.refresh:
        raise UsageError("-o and --refresh apply to one run; put them on the %%fusion line")
    flags = {k: v for k, v in _flags(args).items() if v is not None}
    merged = {**magics.settings()[0], **flags}
    from .pipeline import Fusion

    try:
        Fusion(**merged)  # check now, so a typo fails here rather than in the next cell
    except MissingKeyError:
        pass  # the key may be set later; `%fusion config` shows it as missing
    except FusionError as exc:
        raise UsageError(f"not saved: {exc}") from None
    session.set_defaults(**flags)
    if args.format:
        magics.session_format = args.format
    shown = {**flags, **({"format": args.format} if args.format else {})}
    print("session defaults: " + ", ".join(f"{k}={v!r}" for k, v in shown.items()))


def _describe(magics: FusionMagics) -> str:
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
def presets(magics: FusionMagics, rest: str) -> Any:
    "`%fusion presets`: one row per preset, every panel member shown (`.to_frame()` for a DataFrame)."
    from ._tables import PresetTable

    return PresetTable(PRESETS.values())


def models(magics: FusionMagics, rest: str) -> Any:
    """`%fusion models [--refresh] [PATTERN]`: the endpoint's models, context length, USD per 1M tokens.

    The list is cached on disk for a day; `--refresh` fetches it again.
    """
    pd = _pandas()
    fusion = magics._build(magics.settings()[0])
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


def widget(magics: FusionMagics, rest: str) -> Any:
    "`%fusion widget`: the interactive panel, starting from the effective preset."
    try:
        from .widget import FusionWidget
    except ImportError as exc:
        raise UsageError(f"the widget needs ipywidgets ({exc.name} is missing): pip install ipywidgets") from None
    values = magics.settings()[0]
    options = {k: values[k] for k in ("timeout",) if k in values}
    return FusionWidget(values.get("preset", "quality"), **options)


# -- costs and cache --------------------------------------------------------------------------------
def costs(magics: FusionMagics, rest: str) -> None:
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
    if len(book):
        try:
            figure = book.chart()
        except FusionError:
            return  # no matplotlib: the table is enough
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=96)
        show(Image(data=buffer.getvalue(), format="png"))


def cache(magics: FusionMagics, rest: str) -> None:
    "`%fusion cache info|clear`."
    from .cache import Cache

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


# -- rejudge ----------------------------------------------------------------------------------------
_REJUDGE = MagicArgumentParser(prog="%fusion rejudge", description="Re-run only the judge over stored answers.")
_REJUDGE.add_argument("-j", "--judge", help="judge model id (default: the configured judge)")
_REJUDGE.add_argument("--judges", help="a jury of judges, comma-separated (the first chairs)")
_REJUDGE.add_argument("name", nargs="?", default="_fusion", help="the result to rejudge (default _fusion)")


def rejudge(magics: FusionMagics, rest: str) -> Any:
    "`%fusion rejudge [-j JUDGE] [NAME]`: a new judge verdict over NAME's panel answers, bound to `_fusion`."
    try:
        args = _REJUDGE.parse_argstring(rest)
    except UsageError as exc:
        raise UsageError(f"%fusion rejudge: {exc}; usage: %fusion rejudge [-j JUDGE] [NAME]") from None
    result = magics.user_ns.get(args.name)
    if not isinstance(result, FusionResult):
        raise UsageError(f"{args.name} is not a fusion result; run %%fusion first or name one: %fusion rejudge NAME")
    values = magics.settings()[0]
    if "preset" not in values and result.preset in PRESETS:
        values["preset"] = result.preset  # the same endpoint as the original run (e.g. the local model)
    if args.judge and args.judges:
        raise UsageError("%fusion rejudge: use -j JUDGE or --judges J1,J2, not both")
    if args.judge:
        values["judge"] = args.judge
        values.pop("judges", None)  # one judge named here beats a jury set earlier
    if args.judges:
        values["judges"] = args.judges
    fresh = magics._build(values).rejudge(result)
    magics._bind(fresh, None)
    return display.present(fresh, magics.session_format or magics.format)


# -- compare ----------------------------------------------------------------------------------------
_COMPARE = MagicArgumentParser(
    prog="%fusion compare", description="Fusion against single models on a list or a DataFrame column of prompts."
)
_COMPARE.add_argument("prompts", help="a list variable, NAME.column, NAME[column], or a DataFrame with --column")
_COMPARE.add_argument("--column", help="the prompt column when PROMPTS is a DataFrame")
_COMPARE.add_argument("-b", "--baselines", metavar="M1,M2", help="models to compare with (default: the panel's)")
_COMPARE.add_argument(
    "--reference",
    metavar="REF",
    help="expected answers: a column of the PROMPTS DataFrame, a list variable or NAME.column",
)
_COMPARE.add_argument(
    "--grader", help="with --reference: contains (default) or exact; without: judge (default), a model id, or none"
)
_COMPARE.add_argument("-p", "--preset", help="the fusion preset")
_COMPARE.add_argument("--panel", metavar="M1,M2,...", help="panel model ids, comma-separated")
_COMPARE.add_argument("-j", "--judge", help="judge model id")
_COMPARE.add_argument("--concurrency", type=int, default=8, help="prompts at a time (default 8)")
_COMPARE.add_argument(
    "--max-cost", type=float, metavar="USD", help="send nothing if the new part of the estimate exceeds USD"
)
_COMPARE.add_argument("-o", "--output", metavar="NAME", help="also bind the comparison to NAME")


def compare(magics: FusionMagics, rest: str) -> Any:
    "`%fusion compare PROMPTS [options]`: a `Comparison`, bound to `_compare` (and to NAME with -o)."
    import keyword
    import shlex

    try:
        args = _COMPARE.parse_args(shlex.split(rest))
    except (UsageError, ValueError) as exc:
        raise UsageError(f"%fusion compare: {exc}; see %fusion help") from None
    if args.output is not None and (not args.output.isidentifier() or keyword.iskeyword(args.output)):
        raise UsageError(f"-o needs a Python variable name, got {args.output!r}")
    prompts, table = _lookup(magics.user_ns, args.prompts)
    if args.column is not None:
        if not hasattr(table, "columns") or args.column not in table.columns:
            raise UsageError(f"{args.prompts} has no column {args.column!r}")
        prompts = table[args.column]
    elif hasattr(prompts, "columns"):
        raise UsageError(
            f"{args.prompts} is a DataFrame: name the prompt column with --column, or write {args.prompts}.COLUMN"
        )
    reference = None
    if args.reference is not None:
        columns = getattr(table, "columns", ())
        in_table = args.reference in columns
        reference = table[args.reference] if in_table else _lookup(magics.user_ns, args.reference)[0]
    values = magics.settings()[0]
    values.pop("max_cost", None)  # --max-cost here caps the whole comparison
    for key in ("preset", "panel", "judge"):
        if getattr(args, key):
            values[key] = getattr(args, key)
    if args.preset and not args.panel:
        values.pop("panel", None)
    grader: Any = args.grader
    if grader == "none":
        grader = False
    fusion = magics._build(values)
    try:
        result = fusion.compare(
            prompts,
            args.baselines,
            reference=reference,
            grader=grader,
            concurrency=args.concurrency,
            max_cost=args.max_cost,
        )
    except KeyboardInterrupt:
        raise UsageError("interrupted: the answers that arrived are cached; re-run to resume") from None
    magics.user_ns["_compare"] = result
    if args.output:
        magics.user_ns[args.output] = result
    return result


def _lookup(namespace: dict[str, Any], text: str) -> tuple[Any, Any]:
    "(NAME, NAME.attr or NAME[key], and NAME itself) from the user's namespace (quotes around key optional)."
    import re

    match = re.fullmatch(r"([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*)|\[\s*([\"']?)(.+?)\3\s*\])?", text.strip())
    if match is None:
        raise UsageError(f"{text!r}: name a variable, NAME.column or NAME[column]")
    name, attr_name, _, key = match.groups()
    if name not in namespace:
        raise UsageError(f"no variable {name!r} in the notebook")
    value = namespace[name]
    try:
        if attr_name:
            return getattr(value, attr_name), value
        if key is not None:
            return value[key], value
    except (AttributeError, KeyError, IndexError, TypeError):
        raise UsageError(f"{text!r}: {name} has no {attr_name or key!r}") from None
    return value, value


# -- show -------------------------------------------------------------------------------------------
_SHOW = MagicArgumentParser(prog="%fusion show", description="Show a saved result or frame; sends nothing.")
_SHOW.add_argument("-o", "--output", metavar="NAME", help="also bind what was loaded to NAME")
_SHOW.add_argument("--format", choices=display.FORMATS, metavar="FORMAT", help="as for %%fusion")
_SHOW.add_argument("path", help="a file written by result.save(...) or fusion_magic.save_frame(...)")


def show(magics: FusionMagics, rest: str) -> Any:
    """`%fusion show [-o NAME] [--format FMT] PATH`: the saved result's view, or the saved frame.

    A result is bound to `_fusion` (so `%fusion rejudge` works on it) and to NAME with -o.
    """
    from .saved import kind_of, load_frame, read_json, result_from_dict

    try:
        args = _SHOW.parse_args(shlex.split(rest))
    except (UsageError, ValueError) as exc:
        raise UsageError(f"%fusion show: {exc}; usage: %fusion show [-o NAME] [--format FMT] PATH") from None
    name = args.output
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise UsageError(f"-o needs a Python variable name, got {name!r}")
    data = read_json(args.path)
    kind = kind_of(data)
    if kind == "frame":
        frame = load_frame(args.path)
        if name:
            magics.user_ns[name] = frame
        return frame
    if kind is None:
        raise UsageError(f"{args.path}: neither a saved fusion result nor a saved frame")
    try:
        result = result_from_dict(data)
    except FusionError as exc:
        raise UsageError(f"{args.path}: {exc}") from None
    magics._bind(result, name)
    return display.present(result, args.format or magics.session_format or magics.format)


# -- diff -------------------------------------------------------------------------------------------
def diff(magics: FusionMagics, rest: str) -> Any:
    "`%fusion diff A B`: what only A's judge found, only B's, and both; A and B name results of one panel."
    from .diff import compare_analyses

    names = rest.split()
    if len(names) != 2:
        raise UsageError("usage: %fusion diff A B (two results of the same panel, e.g. NAME and its rejudge)")
    results = []
    for name in names:
        value = magics.user_ns.get(name)
        if not isinstance(value, FusionResult):
            raise UsageError(f"{name} is not a fusion result; name two, e.g. %fusion diff first _fusion")
        results.append(value)
    return compare_analyses(*results)


def serve(magics: FusionMagics, rest: str) -> None:
    "`%fusion serve [--port N]` / `%fusion serve stop` (see `fusion_magic.launch`)."
    from .launch import serve_magic

    serve_magic(magics, rest)
