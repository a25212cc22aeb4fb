"""`%fusion` subcommands over results: rejudge, compare, show, diff, serve.

Each takes the magic as a `fusion_magic._fronts.args.Host` and the rest of the line, and finds the
results it works on in the user's namespace by name. The settings and listings subcommands are
`fusion_magic._fronts.commands`. Errors raised here as `FusionError` become a one-line `UsageError` in
the caller.
"""

from __future__ import annotations

import keyword
import re
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from .._base.config import PRESETS
from .._base.errors import FusionError
from .._values.result import FusionResult
from . import display
from .args import Host

__all__ = ["compare", "diff", "rejudge", "serve", "show"]


# -- rejudge ----------------------------------------------------------------------------------------
_REJUDGE = MagicArgumentParser(prog="%fusion rejudge", description="Re-run only the judge over stored answers.")
_REJUDGE.add_argument("-j", "--judge", help="judge model id (default: the configured judge)")
_REJUDGE.add_argument("--judges", help="a jury of judges, comma-separated (the first chairs)")
_REJUDGE.add_argument("name", nargs="?", default="_fusion", help="the result to rejudge (default _fusion)")


def rejudge(magics: Host, rest: str) -> Any:
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
    fresh = magics.build(values).rejudge(result)
    magics.bind(fresh, None)
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


def compare(magics: Host, rest: str) -> Any:
    "`%fusion compare PROMPTS [options]`: a `Comparison`, bound to `_compare` (and to NAME with -o)."
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
    fusion = magics.build(values)
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


def show(magics: Host, rest: str) -> Any:
    """`%fusion show [-o NAME] [--format FMT] PATH`: the saved result's view, or the saved frame.

    A result is bound to `_fusion` (so `%fusion rejudge` works on it) and to NAME with -o.
    """
    from .._values.saved import kind_of, load_frame, read_json

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
        result = FusionResult.from_dict(data)
    except FusionError as exc:
        raise UsageError(f"{args.path}: {exc}") from None
    magics.bind(result, name)
    return display.present(result, args.format or magics.session_format or magics.format)


# -- diff -------------------------------------------------------------------------------------------
def diff(magics: Host, rest: str) -> Any:
    "`%fusion diff A B`: what only A's judge found, only B's, and both; A and B name results of one panel."
    from .._judge.diff import compare_analyses

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


def serve(magics: Host, rest: str) -> None:
    "`%fusion serve [--port N]` / `%fusion serve stop` (see `fusion_magic._fronts.launch`)."
    from .launch import serve_magic

    serve_magic(magics, rest)
