"""Settings and status words each come from one table: the constructor, the magic's flags, the
`%config` traits, `%fusion config`, the type hints and every view read the same rows."""

from __future__ import annotations

import inspect
from typing import get_args

import pytest
from IPython.core.error import UsageError

from fusion_magic import ConfigError, Fusion
from fusion_magic._base.settings import DEFAULTS, MAGIC_SETTINGS, SETTINGS
from fusion_magic._base.status import PROGRESS_STATES, RESPONSE_STATUSES, RESULT_STATUSES
from fusion_magic._fronts.magic import FusionMagics
from fusion_magic._render import facts
from fusion_magic._render.progress import FINAL, STATE_COLORS, State
from fusion_magic._values.result import ResponseStatus, Status


def test_constructor_defaults_are_the_table_defaults() -> None:
    params = inspect.signature(Fusion).parameters
    for s in SETTINGS:
        if s.default is not None:
            assert params[s.name].default == s.default, s.name


def test_every_magic_setting_is_a_trait_and_a_flag() -> None:
    traits = FusionMagics.class_traits(config=True)
    parser = FusionMagics.fusion_cell.parser
    flags = {opt for action in parser._actions for opt in action.option_strings}
    for s in MAGIC_SETTINGS:
        assert s.name in traits and traits[s.name].help.lower().startswith(s.help.lower()), s.name
        assert set(s.flags) <= flags, s.name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": -1}, "timeout must be a positive number of seconds, got -1"),
        ({"max_cost": float("nan")}, "max_cost must be a positive number of USD"),
        ({"temperature": 3}, "temperature must be between 0 and 2, got 3"),
        ({"max_tokens": 0}, "max_tokens must be a positive whole number, got 0"),
        ({"stall_timeout": 0}, "stall_timeout must be a positive number of seconds, got 0"),
    ],
)
def test_the_table_checks_values_for_every_front_end(kwargs, message, emulator) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Fusion("budget", api_key="sk-test", **kwargs)


def test_magic_flags_are_checked_by_the_same_rows(emulator) -> None:
    from traitlets.config import Config

    from fusion_magic._fronts import commands

    config = Config()
    config.FusionMagics.timeout = 33
    magics = FusionMagics(shell=None, config=config)  # what `%config FusionMagics.timeout = 33` sets
    values, sources = magics.settings()
    assert (values["timeout"], sources["timeout"]) == (33, "%config")
    with pytest.raises(UsageError, match="temperature must be between 0 and 2"):
        commands.config(magics, "--temperature 5")
    assert DEFAULTS["timeout"] == 120


def test_status_words_are_the_tables() -> None:
    assert get_args(Status) == tuple(w.word for w in RESULT_STATUSES)
    assert get_args(ResponseStatus) == tuple(w.word for w, _ in RESPONSE_STATUSES)
    assert set(get_args(State)) == {s.word for s in PROGRESS_STATES}
    assert facts.RESULT_LABEL == {w.word: w.label for w in RESULT_STATUSES}
    assert set(facts.STATUS_LABEL) == set(facts.STATUS_ICON) == set(get_args(ResponseStatus))
    assert FINAL == {s.word for s in PROGRESS_STATES if s.final}
    assert set(STATE_COLORS) == set(get_args(State))
