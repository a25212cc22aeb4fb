"""`%fusion` subcommands for the deliberation methods over a result: cross-examine, resolve, ablate.

    %fusion cross-examine [--max-cost USD] [NAME]    members mark NAME's analysis (default `_fusion`)
    %fusion resolve [--max-cost USD] [NAME]          one targeted round on NAME's contradictions
    %fusion ablate [--judges J1,J2] [--max-cost USD] [NAME]   leave-one-out and judge swaps, a table

A new result is bound to `_fusion` (and shown); the ablation table is the cell's value, with the
one-line influence printed above it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from .._values.result import FusionResult
from . import display
from .args import Host

__all__ = ["COMMANDS", "ablate", "cross_examine", "resolve"]


def _parser(name: str, what: str, judges: bool = False) -> MagicArgumentParser:
    parser = MagicArgumentParser(prog=f"%fusion {name}", description=what)
    if judges:
        parser.add_argument("--judges", metavar="J1,J2", help="judges to swap in, comma-separated")
    parser.add_argument("--max-cost", type=float, metavar="USD", help="send nothing if the estimate exceeds USD")
    parser.add_argument("name", nargs="?", default="_fusion", help="the result (default _fusion)")
    return parser


_PARSERS = {
    "cross-examine": _parser("cross-examine", "Members mark the analysis: agree, disagree, not addressed."),
    "resolve": _parser("resolve", "One targeted round for the members of each contradiction."),
    "ablate": _parser("ablate", "Leave each member out, swap judges: what the analysis loses.", judges=True),
}


def _target(magics: Host, sub: str, rest: str) -> tuple[FusionResult, Any]:
    try:
        args = _PARSERS[sub].parse_argstring(rest)
    except UsageError as exc:
        raise UsageError(f"%fusion {sub}: {exc}") from None
    result = magics.user_ns.get(args.name)
    if not isinstance(result, FusionResult):
        raise UsageError(f"{args.name} is not a fusion result; run %%fusion first or name one: %fusion {sub} NAME")
    return result, args


def _settings(args: Any) -> dict[str, Any]:
    return {"max_cost": args.max_cost} if args.max_cost is not None else {}


def cross_examine(magics: Host, rest: str) -> Any:
    "`%fusion cross-examine [NAME]`: NAME cross-examined by its members, bound to `_fusion`."
    return _again(magics, "cross-examine", rest, "cross_examine")


def resolve(magics: Host, rest: str) -> Any:
    "`%fusion resolve [NAME]`: NAME after one targeted round, bound to `_fusion`."
    return _again(magics, "resolve", rest, "resolve")


def _again(magics: Host, command: str, rest: str, method: str) -> Any:
    "NAME's ``method`` (a new result), bound to `_fusion` and shown."
    result, args = _target(magics, command, rest)
    fresh = getattr(result, method)(**_settings(args))
    magics.bind(fresh, None)
    return display.present(fresh, magics.session_format or magics.format)


def ablate(magics: Host, rest: str) -> Any:
    "`%fusion ablate [--judges J1,J2] [NAME]`: the ablation table (its influence line printed first)."
    result, args = _target(magics, "ablate", rest)
    judges = [j.strip() for j in (args.judges or "").split(",") if j.strip()]
    frame = result.ablate(judges=judges, **_settings(args))
    print(frame.attrs["influence"])
    return frame


COMMANDS: dict[str, Callable[[Host, str], Any]] = {"cross-examine": cross_examine, "resolve": resolve, "ablate": ablate}
