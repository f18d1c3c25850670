"""Dagster run config generated from settings dataclasses, so names, types, defaults and docs have
one source: the dataclass the code computes with.

A settings field is declared with `setting(default, doc)`; `config_class` turns one or more such
dataclasses into a `dagster.Config` (nested dataclasses flattened, tuples shown as lists), and
`settings_from` builds a dataclass back from a config's values.
"""

from __future__ import annotations

from dataclasses import field, fields, is_dataclass
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from dagster import Config
from pydantic import Field, create_model

Settings = TypeVar("Settings")


def setting(default: Any, doc: str) -> Any:
    """A settings field: its default and what it means (the run config shows both)."""
    return field(default=default, metadata={"doc": doc})


def config_class(name: str, *sources: type, base: type[Config] = Config) -> type[Config]:
    """A run config class with one field per field of the `sources` dataclasses (a nested
    dataclass's fields flattened into it); a name defined twice is an error."""
    config_fields: dict[str, Any] = {}
    for source in sources:
        for key, value in _config_fields(source).items():
            if key in config_fields:
                raise ValueError(f"run config field {key!r} defined twice")
            config_fields[key] = value
    return create_model(name, __base__=base, **config_fields)


def settings_from(config: Config, source: type[Settings]) -> Settings:
    """`source` from the config's values (lists back to tuples, an empty list as None)."""
    hints = get_type_hints(source)
    values = {}
    for f in fields(source):
        if is_dataclass(hints[f.name]):
            values[f.name] = settings_from(config, hints[f.name])
        else:
            value = getattr(config, f.name)
            values[f.name] = (tuple(value) or None) if isinstance(value, list) else value
    return source(**values)


def _config_fields(source: type) -> dict[str, Any]:
    hints = get_type_hints(source)
    out: dict[str, Any] = {}
    for f in fields(source):
        if is_dataclass(hints[f.name]):
            nested = _config_fields(hints[f.name])
            if set(nested) & set(out):
                raise ValueError(f"run config fields defined twice: {sorted(set(nested) & set(out))}")
            out.update(nested)
        else:
            out[f.name] = (_config_type(hints[f.name]), Field(f.default, description=f.metadata.get("doc")))
    return out


def _config_type(hint: Any) -> Any:
    """The run config's type of a settings field: a list for a tuple, optional stays optional."""
    args = get_args(hint)
    if get_origin(hint) is tuple:
        return list[args[0]]
    if type(None) in args:
        [inner] = [arg for arg in args if arg is not type(None)]
        return _config_type(inner) | None
    return hint
