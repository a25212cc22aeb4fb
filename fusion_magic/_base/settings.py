"""The settings of a deliberation, one table: name, type, built-in default, check, help, flag.

`Fusion(...)` takes its defaults from here and checks values with it; the `%%fusion` flags, the
`%config FusionMagics.*` traits and `%fusion config` are generated from the rows that have a flag.
Adding a setting is one row here plus the code that uses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .reasoning import check_reasoning as _reasoning

__all__ = ["DEFAULTS", "MAGIC_SETTINGS", "MAX_TOOL_CALLS", "SETTINGS", "Setting", "check", "setting"]


def _number(unit: str, *, zero: bool = False) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < 0 or (value == 0 and not zero):
            raise ConfigError(f"{name} must be a positive number of {unit}, got {value!r}")

    return check


def _temperature(name: str, value: Any) -> None:
    if not 0 <= value <= 2:
        raise ConfigError(f"{name} must be between 0 and 2, got {value}")


def _choice(*options: str) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}")

    return check


def _rounds(name: str, value: Any) -> None:
    if value not in (1, 2) or isinstance(value, bool):
        raise ConfigError(
            f"{name} must be 1 (answer, judge) or 2 (one targeted round on contradictions), got {value!r}"
        )


def _reasoning_setting(name: str, value: Any) -> None:
    _reasoning(value, name)


def _whole(name: str, value: Any) -> None:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number, got {value!r}")


MAX_TOOL_CALLS = 16  # OpenRouter Fusion's ceiling on a panellist's tool calls


def _tool_calls(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOOL_CALLS:
        raise ConfigError(f"{name} must be a whole number from 1 to {MAX_TOOL_CALLS}, got {value!r}")


@dataclass(frozen=True)
class Setting:
    name: str  # the `Fusion` keyword, the `%config FusionMagics` trait, the flag's dest
    kind: type  # str, float, int or bool: the trait's type and the flag's
    default: Any  # the built-in; None means the preset decides, or nothing is set
    help: str  # one line, for the flag, the trait and `%fusion config`
    flags: tuple[str, ...] = ()  # the `%%fusion` flags; () for settings only Python sets
    metavar: str | None = None
    validate: Callable[[str, Any], None] | None = None  # raises ConfigError; not called for None
    unset: str = "-"  # how `%fusion config` shows None
    show: Callable[[Any], str] = str  # how `%fusion config` shows a value
    listed: bool = False  # `%fusion config` lists it even when nothing set it

    def check(self, value: Any) -> None:
        if value is not None and self.validate is not None:
            self.validate(self.name, value)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "preset", str, "quality", "preset: quality (default), budget, free, local, or one you added", ("-p", "--preset")
    ),
    Setting("panel", str, None, "panel model ids, comma-separated; a|b falls back to b", ("--panel",), "M1,M2,..."),
    Setting("judge", str, None, "judge model id; a|b tries b when a fails or gives no analysis", ("-j", "--judge")),
    Setting("judges", str, None, "a jury: several judges, merged; the first one chairs", ("--judges",), "J1,J2,..."),
    Setting(
        "verified_only",
        bool,
        False,
        "hide analysis items whose quote was not found in that member's answer",
        ("--verified-only",),
    ),
    Setting(
        "order",
        str,
        "shuffled",
        "the order the judge reads the answers: shuffled (seeded per question, recorded) or fixed (panel order)",
        ("--order",),
        "ORDER",
        _choice("shuffled", "fixed"),
    ),
    Setting(
        "cross_examine",
        bool,
        False,
        "members mark the analysis agree/disagree/not addressed; consensus counted from their marks",
        ("--cross-examine",),
    ),
    Setting("rounds", int, 1, "2: one more turn for the members of each contradiction", ("--rounds",), "N", _rounds),
    Setting("system", str, None, "system prompt for every panel member (quote it)", ("--system",), "TEXT"),
    Setting("temperature", float, None, "sampling temperature, 0 to 2", ("-t", "--temperature"), "TEMP", _temperature),
    Setting(
        "max_tokens",
        int,
        None,
        "maximum tokens per answer (preset default: 16000; local: 300)",
        ("--max-tokens",),
        "N",
        _whole,
    ),
    Setting(
        "reasoning",
        str,
        None,
        "reasoning effort (none, minimal, low, medium, high, xhigh) or a token budget",
        ("--reasoning",),
        "EFFORT|N",
        _reasoning_setting,
    ),
    Setting(
        "timeout",
        float,
        120,
        "per-member deadline in seconds (built-in: 120)",
        ("--timeout",),
        "S",
        _number("seconds"),
        show=lambda v: f"{v:g} s",
        listed=True,
    ),
    Setting(
        "quorum",
        int,
        None,
        "judge once K members answered; cancel the rest",
        ("--quorum",),
        "K",
        unset="all members",
        listed=True,
    ),
    Setting(
        "web", bool, False, "members read the web: OpenRouter's web search and fetch, else a `fetch` tool", ("--web",)
    ),
    # Panel tools (see `fusion_magic._engine.toolset`): in Python `data` is {name: frame} and `tools` functions.
    Setting("data", str, None, "members query these DataFrames with a read-only `sql` tool", ("--data",), "DF1,DF2"),
    Setting("python", bool, False, "members run Python in a sandbox (with the --data frames)", ("--python",)),
    Setting("tools", str, None, "members may call these functions of the notebook", ("--tools",), "FN1,FN2"),
    Setting(
        "max_tool_calls",
        int,
        4,
        f"tool calls per member before it must answer, 1 to {MAX_TOOL_CALLS} (built-in: 4)",
        ("--max-tool-calls",),
        "N",
        _tool_calls,
    ),
    Setting("tool", str, None, "PRIMARY gets a `fusion` tool and decides whether to call it", ("--tool",), "PRIMARY"),
    Setting(
        "max_cost",
        float,
        None,
        "send nothing if the estimate exceeds USD",
        ("--max-cost",),
        "USD",
        _number("USD", zero=True),
        unset="no limit",
        show=lambda v: f"${v:g}",
        listed=True,
    ),
    # The flag is --no-cache (and --refresh, for one run): see the magic.
    Setting(
        "cache", bool, True, "use the answer cache", ("--no-cache",), show=lambda v: "on" if v else "off", listed=True
    ),
    Setting("base_url", str, None, "any OpenAI-compatible server (default OpenRouter)", ("--base-url",), "URL"),
    Setting("api_key_env", str, None, "read the API key from this env var", ("--api-key-env",), "VAR"),
    # Python only.
    Setting(
        "judge_timeout",
        float,
        None,
        "the judge's deadline in seconds (None: the members' timeout)",
        validate=_number("seconds"),
    ),
    Setting("headers", dict, None, "extra HTTP headers for every request (never shown)"),
    Setting("auth_header", str, None, "the header that carries the key (None: Authorization)"),
    Setting("auth_scheme", str, None, "the word before the key in that header (None: Bearer; empty: the bare key)"),
    Setting("refresh", bool, False, "ask again and overwrite the cached answers"),
    Setting("stream", bool, True, "stream answers (server-sent events)"),
    Setting("max_retries", int, 3, "retries of a failed request (429, 5xx, cut connections)"),
    Setting(
        "stall_timeout",
        float,
        60.0,
        "seconds a stream may stay silent before it is retried",
        validate=_number("seconds"),
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
# The settings a magic layer (flags, `%fusion config`, `%config`) may hold.
MAGIC_SETTINGS: tuple[Setting, ...] = tuple(s for s in SETTINGS if s.flags)


def setting(name: str) -> Setting:
    return _BY_NAME[name]


def check(values: dict[str, Any]) -> None:
    "Check every known setting in ``values`` (raises `ConfigError` for the first bad one)."
    for name, value in values.items():
        if name in _BY_NAME:
            _BY_NAME[name].check(value)
