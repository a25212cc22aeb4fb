"""Installs the tests' read guard (tests/read_guard.py) in a Python subprocess started by a test.

The test session puts this folder on PYTHONPATH and names a log file in FUSION_TEST_READ_LOG; a child
that inherits both records every file it opens outside the checkout there. Without the variable (a
child that was given a fresh environment) this does nothing.
"""

import importlib.util
import os
import sys

__all__: list[str] = []

if os.environ.get("FUSION_TEST_READ_LOG"):
    _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "read_guard.py")
    _spec = importlib.util.spec_from_file_location("_fusion_read_guard", _path)
    if _spec is not None and _spec.loader is not None:
        _module = importlib.util.module_from_spec(_spec)
        sys.modules[_spec.name] = _module  # dataclasses and friends look the module up by name
        _spec.loader.exec_module(_module)
        _module.ReadGuard(_module.allowed_roots(), log=os.environ["FUSION_TEST_READ_LOG"]).install()
