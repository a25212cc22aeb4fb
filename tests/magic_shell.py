"""An in-process IPython shell with the fusion magics registered, as a pytest plugin (see conftest.py).

`ip` is that shell, reset for each test, with no `%config FusionMagics` value left from the last one;
a cell's error is raised (not only printed), so a test sees a `UsageError` as it happens.
"""

from __future__ import annotations

import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from fusion_magic._fronts.magic import register, unregister


class RaisingShell(InteractiveShell):
    "A shell whose run_cell raises the cell's error instead of only printing it."

    def run_cell(self, *args, **kwargs):
        result = super().run_cell(*args, **kwargs)
        result.raise_error()
        return result


@pytest.fixture(scope="module")
def shell():
    config = Config()
    config.HistoryAccessor.enabled = False  # no sqlite history: avoids "too many open files"
    # The shell installs its own `__main__` module; put the real one back afterwards, or
    # multiprocessing's spawn (which re-imports `__main__` in the child) breaks in later tests.
    main = sys.modules["__main__"]
    ip = RaisingShell.instance(config=config)
    try:
        yield ip
    finally:
        RaisingShell.clear_instance()
        sys.modules["__main__"] = main


@pytest.fixture
def ip(shell):
    shell.reset()
    shell.config.FusionMagics = Config()
    register(shell)
    yield shell
    unregister(shell)
    # `%config` keeps even a value it refused in the shell's config: leave none for the next test.
    shell.config.FusionMagics = Config()
