"""The `%%fusion` cell magic and the `%fusion` line magic: parse, build a `Fusion`, run, bind.

The magic holds no pipeline logic. Its one job besides parsing is the error boundary: every
usage mistake becomes a plain `UsageError` (IPython prints exactly that class as one line with no
traceback; a subclass would get a full traceback), raised before anything is sent.

Settings come from, strongest first: the cell's flags, `%fusion config` (session defaults),
`%config FusionMagics.*`, the environment (`FUSION_BASE_URL`, keys), then the built-ins.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, Enum, Float, Integer, Unicode

from .._base.errors import FusionError, FusionInterrupted
from .._base.interpolate import interpolate
from .._base.settings import MAGIC_SETTINGS, Setting
from . import display, session
from .args import SETTINGS, Host, cell_options, flags, parse

if TYPE_CHECKING:  # the HTTP stack and pydantic load with the first run, not with %load_ext
    from .._fusion import Fusion
    from .._values.result import FusionResult

__all__ = ["SETTINGS", "FusionMagics", "register", "unregister"]

# `%fusion` subcommands: the settings and listings are `commands`, those over results `result_commands`.
SUBCOMMANDS = (
    "config",
    "presets",
    "models",
    "widget",
    "costs",
    "cache",
    "rejudge",
    "compare",
    "diff",
    "cross-examine",
    "resolve",
    "ablate",
    "show",
    "serve",
    "help",
)


_TRAITS = {str: Unicode, float: Float, int: Integer, bool: Bool}


def _trait(s: Setting) -> Any:
    "A `%config FusionMagics.<name>` default; None means not set, so a lower layer decides."
    return _TRAITS[s.kind](None, allow_none=True, help=s.help[:1].upper() + s.help[1:] + ".").tag(config=True)


# The `%config` traits, generated from the settings table.
if TYPE_CHECKING:
    _SettingTraits = Magics
else:
    _SettingTraits = type(Magics)("_SettingTraits", (Magics,), {s.name: _trait(s) for s in MAGIC_SETTINGS})


@magics_class
class FusionMagics(_SettingTraits):
    """`%%fusion` (ask a panel, then a judge) and `%fusion` (config, presets, models, costs...)."""

    format = Enum(
        display.FORMATS, default_value="widget", help="What %%fusion shows: " + "|".join(display.FORMATS)
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.session_format: str | None = None  # `%fusion config --format`; the rest lives in `session`

    # -- %%fusion ---------------------------------------------------------------------------------
    @cell_options
    @cell_magic("fusion")  # type: ignore[arg-type]  # IPython types this decorator loosely
    def fusion_cell(self, line: str, cell: str) -> Any:
        """Ask a panel of models the cell's prompt, then have a judge compare and synthesize.

        The result is bound to `_fusion` (and to NAME with -o). In the prompt, `{name}` is
        replaced by that variable (a DataFrame becomes a bounded table); unknown names and
        braces in code stay as written; `{{x}}` gives a literal `{x}`.

            %%fusion -p budget --timeout 60
            Is it safe to run VACUUM FULL on a busy Postgres table? Context: {notes}

        Settings: flags > `%fusion config` > `%config FusionMagics.*` > env > built-ins.
        See also `%fusion help`.
        """
        args = parse(line, "%%fusion")
        name = args.output
        if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
            raise UsageError(f"-o needs a Python variable name, got {name!r}")
        prompt = interpolate(cell or "", self.user_ns)
        if not prompt.strip():
            raise UsageError("empty prompt: write the question in the cell, below the %%fusion line")
        fmt = args.format or self.session_format or self.format
        previous = self._previous(args.follow_up)
        if previous is None:
            fusion = self.build(self.settings(flags(args))[0])
        else:  # the run that made NAME, with only the flags given here changed
            try:
                from .._engine.toolset import from_notebook
                from .origin import fusion_for

                given = from_notebook({k: v for k, v in flags(args).items() if v is not None}, self.user_ns)
                fusion = fusion_for(previous, **given)
            except FusionError as exc:
                raise UsageError(str(exc)) from None
        from .._render.live import LiveProgress

        live = LiveProgress("html" if display.in_kernel(self.shell) else "text")
        try:
            result = fusion.run(prompt, on_tick=live.tick, follow_up_of=previous)
        except KeyboardInterrupt as exc:
            kept = exc.result if isinstance(exc, FusionInterrupted) else None
            if kept is None:
                raise UsageError("interrupted before any answer arrived; nothing to keep") from None
            self.bind(kept, name)
            display.show(kept, fmt)
            answers = sum(r.ok for r in kept.responses)
            # An error (not a normal return) so that "Run all" stops here instead of spending on.
            raise UsageError(f"interrupted: kept {answers} answers (cached); re-run to resume") from None
        except FusionError as exc:
            raise UsageError(str(exc)) from None
        finally:
            live.close()
        self.bind(result, name)
        return display.present(result, fmt)

    # -- %fusion ----------------------------------------------------------------------------------
    @line_magic("fusion")  # type: ignore[arg-type]
    def fusion_line(self, line: str) -> Any:
        """Settings and tools for `%%fusion`.

        %fusion config [flags]        show the effective settings, or set session defaults
        %fusion config reset          forget the session defaults
        %fusion presets               the presets (panel, judge, description)
        %fusion models [--refresh] [PATTERN]  the endpoint's models, context, USD per 1M tokens
        %fusion widget                an interactive panel (prompt, models, judge, Run)
        %fusion costs                 this session's calls, costs, tokens and cache hits
        %fusion cache info|clear      the answer cache
        %fusion rejudge [-j JUDGE] [NAME]   re-run only the judge over NAME (default `_fusion`); --judges J1,J2: a jury
        %fusion compare PROMPTS [-b M1,M2] [--reference REF] [--grader G] [-o NAME]
                                      fusion against single models on your prompts (`_compare`)
        %fusion show [-o NAME] PATH   a saved result (result.save) or frame (save_frame), offline
        %fusion diff A B              what only A's judge found, only B's, and both (two results)
        %fusion cross-examine [NAME]  members mark NAME's analysis; consensus counted from their marks
        %fusion resolve [NAME]        one targeted round for the members of each contradiction
        %fusion ablate [--judges J1,J2] [NAME]   leave each member out, swap judges: a table
        %fusion serve [--port N] | stop     an OpenAI-compatible endpoint in this kernel's background
        %fusion help                  this text
        """
        from . import commands, method_commands, result_commands  # pandas, pydantic, the ledger load here

        sub, _, rest = line.strip().partition(" ")
        if sub in ("", "help"):
            print(_help_text(self.fusion_line.__doc__ or ""))
            return None
        if sub not in SUBCOMMANDS:
            raise UsageError(f"unknown %fusion command {sub!r}; use one of: {', '.join(SUBCOMMANDS)}")
        module = commands if sub in commands.__all__ else result_commands
        command: Callable[[Host, str], Any] = method_commands.COMMANDS.get(sub) or getattr(module, sub)
        try:
            return command(self, rest.strip())
        except FusionError as exc:
            raise UsageError(str(exc)) from None

    # -- shared -----------------------------------------------------------------------------------
    def settings(self, flags: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
        "The effective `Fusion` keyword arguments and where each came from (env and built-ins are implicit)."
        config = {k: getattr(self, k) for k in SETTINGS if getattr(self, k, None) is not None}
        saved = {k: v for k, v in session.defaults().items() if k in SETTINGS}
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for source, layer in (("%config", config), ("%fusion config", saved), ("flag", flags or {})):
            for key, value in layer.items():
                if value is not None:
                    values[key], sources[key] = value, source
                    # -j and --judges name the same seat: the stronger layer's choice wins.
                    rival = {"judge": "judges", "judges": "judge"}.get(key)
                    if rival in values and sources[rival] != source:
                        del values[rival], sources[rival]
        return values, sources

    def _previous(self, name: str | None) -> FusionResult | None:
        "The result `--follow-up NAME` names (None without the flag)."
        if name is None:
            return None
        previous = self.user_ns.get(name)
        from .._values.result import FusionResult

        if not isinstance(previous, FusionResult):
            raise UsageError(f"--follow-up {name}: {name} is not a fusion result; run %%fusion -o {name} first")
        return previous

    def build(self, settings: dict[str, Any]) -> Fusion:
        "A `Fusion` from ``settings``; a bad setting is one `UsageError` line."
        try:
            from .._engine.toolset import from_notebook
            from .._fusion import Fusion

            return Fusion(**from_notebook(settings, self.user_ns))
        except FusionError as exc:
            raise UsageError(str(exc)) from None

    @property
    def user_ns(self) -> dict[str, Any]:
        "The user's namespace (registered magics always have a shell)."
        assert self.shell is not None
        user_ns: dict[str, Any] = self.shell.user_ns
        return user_ns

    def bind(self, result: FusionResult, name: str | None) -> None:
        "Bind ``result`` to `_fusion` (and to ``name`` when given)."
        self.user_ns["_fusion"] = result
        if name:
            self.user_ns[name] = result


def _help_text(doc: str) -> str:
    lines = [ln[8:] if ln.startswith("        ") else ln.strip() for ln in doc.splitlines()]
    body = "\n".join(lines).strip()
    return f"{body}\n\n%%fusion? lists the cell magic's options."


def register(ipython: Any) -> None:
    "Register the magics on ``ipython`` (again, cleanly, after a reload)."
    unregister(ipython)
    ipython.register_magics(FusionMagics)


def unregister(ipython: Any) -> None:
    "Remove the magics and their configurable from ``ipython``."
    manager = ipython.magics_manager
    instance = manager.registry.pop(FusionMagics.__name__, None)
    for kind in ("line", "cell"):
        func = manager.magics[kind].get("fusion")
        owner = getattr(func, "__self__", None)
        if func is not None and (owner is instance or isinstance(owner, FusionMagics)):
            del manager.magics[kind]["fusion"]
    if instance is not None and instance in getattr(ipython, "configurables", []):
        ipython.configurables.remove(instance)
