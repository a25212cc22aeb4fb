"""Saving and reloading what a deliberation learnt: a `FusionResult` or a `Fusion.map` frame, as JSON.

A result file is exactly ``result.to_json()``; `result_from_dict` is the inverse of
``FusionResult.to_dict`` (derived keys such as ``cost_usd`` or ``usage`` are recomputed, not read).
A frame file is pandas' ``orient="table"`` JSON, which keeps the index, the column order and the
dtypes. Reading either needs no network and no key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union

from pydantic import BaseModel, ValidationError

from .._base.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from .result import FusionResult

__all__ = [
    "kind_of",
    "load_frame",
    "load_result",
    "python_strings",
    "read_json",
    "result_from_dict",
    "save_frame",
    "save_result",
]

T = TypeVar("T")
R = TypeVar("R", bound="FusionResult")
PathLike: typing.TypeAlias = "str | os.PathLike[str]"  # what open() takes


# -- dict <-> dataclass ------------------------------------------------------------------------------
def from_fields(cls: type[T], data: Mapping[str, Any]) -> T:
    "An instance of the dataclass ``cls`` from ``data``: its fields, decoded by their annotations."
    if not isinstance(data, Mapping):
        raise TypeError(f"{cls.__name__} needs a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    values = {
        f.name: _decode(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.init and f.name in data
    }
    return cls(**values)


def _decode(hint: Any, value: Any) -> Any:
    "``value`` (plain JSON) as the annotated type: nested dataclasses, pydantic models, lists, optionals."
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode(options[0], value) if len(options) == 1 else value
    if origin in (list, tuple):
        args = typing.get_args(hint)
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        items = [_decode(args[0] if args else Any, v) for v in value]
        return items if origin is list else tuple(items)
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint.model_validate(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_fields(hint, value)
    return value


def result_from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
    "The ``cls`` (a `FusionResult`) that ``to_dict()`` gave ``data`` (one-line `ConfigError` when it is not one)."
    missing = [k for k in ("prompt", "status", "responses") if not isinstance(data, Mapping) or k not in data]
    if missing:
        raise ConfigError(f"not a saved fusion result: no {', '.join(repr(k) for k in missing)}")
    try:
        return from_fields(cls, data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"not a saved fusion result: analysis {where}: {first['msg']}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"not a saved fusion result: {str(exc).splitlines()[0]}") from None


# -- files -------------------------------------------------------------------------------------------
def _write_text(path: PathLike, text: str) -> Path:
    "Write ``text`` to ``path`` atomically: a crash mid-write leaves the old file, never half a new one."
    target = Path(path).expanduser()
    if target.is_dir():
        raise ConfigError(f"cannot save to {target}: it is a folder; give a file name such as result.json")
    if not target.parent.is_dir():
        raise ConfigError(f"cannot save to {target}: the folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_json(path: PathLike) -> Any:
    "The JSON in ``path``; every problem (missing, unreadable, not JSON) is one `ConfigError` line."
    source = Path(path).expanduser()
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a folder, not a saved result") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read it ({type(exc).__name__})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def kind_of(data: Any) -> str | None:
    "What a loaded JSON file holds: 'result', 'frame' (orient='table') or None."
    if isinstance(data, dict) and {"prompt", "status", "responses"} <= data.keys():
        return "result"
    if isinstance(data, dict) and isinstance(data.get("schema"), dict) and isinstance(data.get("data"), list):
        return "frame"
    return None


def save_result(result: FusionResult, path: PathLike) -> Path:
    "Write ``result.to_json()`` to ``path`` (replacing the file); returns the path."
    return _write_text(path, result.to_json() + "\n")


def load_result(cls: type[R], path: PathLike) -> R:
    "The ``cls`` (a `FusionResult`) saved at ``path`` by `save_result` (or any file holding ``to_json()``)."
    data = read_json(path)
    if kind_of(data) == "frame":
        raise ConfigError(f"{path}: holds a saved frame, not one result; read it with fusion_magic.load_frame")
    try:
        return result_from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_frame(frame: pd.DataFrame, path: PathLike) -> Path:
    "Write a `Fusion.map` frame (or any DataFrame) as pandas ``orient='table'`` JSON; returns the path."
    import math

    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"save_frame needs a pandas DataFrame, got {type(frame).__name__}")
    try:
        table = json.loads(frame.to_json(orient="table"))
    except UnicodeEncodeError:
        raise ConfigError(
            f"{path}: not saved: the frame holds a broken character (a lone surrogate, such as half an emoji) "
            "that a JSON file cannot store"
        ) from None
    # pandas writes floats with at most 15 decimals (0.000148 -> 1.48e-4 survives, 1/3 does not):
    # put back the exact values, which json writes in full.
    floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    for row, (_, values) in zip(table["data"], frame[floats].iterrows(), strict=True):
        for column in floats:
            value = float(values[column])
            row[str(column)] = None if math.isnan(value) else value
    return _write_text(path, json.dumps(table, indent=1, ensure_ascii=False, allow_nan=False) + "\n")


def python_strings() -> Any:
    """pandas set to keep text columns as Python strings while a frame is built (the fallback where
    pyarrow is installed: Arrow's strings refuse what a prompt may hold, such as a lone surrogate)."""
    import pandas as pd

    return pd.option_context("mode.string_storage", "python")


def load_frame(path: PathLike) -> pd.DataFrame:
    "The DataFrame saved at ``path`` by `save_frame`: same index, columns, dtypes and values."
    import io

    import pandas as pd

    data = read_json(path)
    if kind_of(data) != "frame":
        hint = "; read a result with FusionResult.load" if kind_of(data) == "result" else ""
        raise ConfigError(f"{path}: not a saved frame (pandas orient='table' JSON){hint}")
    frame = pd.read_json(io.StringIO(json.dumps(data)), orient="table", precise_float=True)
    # JSON null in an object column (e.g. `error` when no row failed) was None, not NaN.
    for column in [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c])]:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame
