"""The `%%fusion` options and the interface the `%fusion` subcommands are given.

Both `fusion_magic._fronts.magic` (the cell magic) and the subcommands (`%fusion config` takes the same
flags) read a line with the one parser built here, from the settings table. The subcommands see
the magic only through `Host`: the effective settings, building a `Fusion`, binding a result, the
user's namespace and the output format, never the magic class's internals.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any, Protocol

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from .._base.settings import MAGIC_SETTINGS
from . import display

if TYPE_CHECKING:  # the HTTP stack and pydantic load with the first run, not with %load_ext
    from .._fusion import Fusion
    from .._values.result import FusionResult

__all__ = ["CELL_PARSER", "SETTINGS", "Host", "cell_options", "flags", "parse"]

# The settings a layer may hold; all are `Fusion` keyword names (rows of `settings.SETTINGS`).
SETTINGS = tuple(s.name for s in MAGIC_SETTINGS)


class Host(Protocol):
    """What a `%fusion` subcommand may use of the magic that runs it."""

    shell: Any  # the IPython shell (None outside one)
    format: str  # `%config FusionMagics.format`
    session_format: str | None  # `%fusion config --format`, None when not set

    @property
    def user_ns(self) -> dict[str, Any]: ...

    def settings(self, flags: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        "The effective `Fusion` keyword arguments and where each came from."
        ...

    def build(self, settings: dict[str, Any]) -> Fusion:
        "A `Fusion` from these settings; a bad setting is a `UsageError`."
        ...

    def bind(self, result: FusionResult, name: str | None) -> None:
        "Bind ``result`` to `_fusion` (and to ``name``)."
        ...


def _setting_flags(func: Any) -> Any:
    "The `%%fusion` flags of the settings table, in its order (`cache` is the --no-cache flag below)."
    for s in reversed(MAGIC_SETTINGS):
        if s.name == "cache":
            continue
        if s.kind is bool:
            func = argument(*s.flags, action="store_true", default=None, help=s.help)(func)
        else:
            func = argument(*s.flags, type=s.kind, metavar=s.metavar, help=s.help)(func)
    return func


def cell_options(func: Any) -> Any:
    "Give ``func`` the `%%fusion` options (its ``.parser``, and the usage appended to its docstring)."
    func = argument(
        "--format",
        choices=display.FORMATS,
        metavar="FORMAT",
        help="widget (default: the rich result), html, markdown, json, or none (only bind it)",
    )(func)
    func = argument(
        "--follow-up",
        metavar="NAME",
        help="a follow-up to the result NAME: the same panel, each member seeing its earlier answer "
        "and the synthesized answer; other flags change that run's settings",
    )(func)
    func = argument("-o", "--output", metavar="NAME", help="also bind the result to NAME")(func)
    func = argument("--refresh", action="store_true", default=None, help="ask again and overwrite the cached answers")(
        func
    )
    func = argument("--no-cache", action="store_true", default=None, help="neither read nor write the answer cache")(
        func
    )
    return magic_arguments(name="%fusion")(_setting_flags(func))


@cell_options
def _cell(line: str, cell: str) -> None:
    "The `%%fusion` options, for the subcommands that take them too."


CELL_PARSER = _cell.parser


def parse(line: str, what: str, parser: Any = CELL_PARSER) -> Any:
    "Parse ``line`` with ``parser`` (the `%%fusion` options); every problem is one `UsageError` line."
    try:
        # shlex, not IPython's arg_split: that keeps the quotes of `--system "Be brief."` in the value.
        argv = shlex.split(line)
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"{what}: cannot read the options ({exc})") from None
    try:
        return parser.parse_args(argv)
    except UsageError as exc:
        raise UsageError(f"{what}: {exc}; see {what}? for the options") from None


def flags(args: Any) -> dict[str, Any]:
    "The `Fusion` keyword arguments given as flags (absent flags are None)."
    given = {k: getattr(args, k, None) for k in SETTINGS if k != "cache"}
    if args.no_cache and args.refresh:
        raise UsageError("--no-cache and --refresh contradict each other; use one")
    if args.no_cache:
        given["cache"] = False
    if args.refresh:
        given["refresh"] = True
    return given
