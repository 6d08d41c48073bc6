"""Command-line flags from a typed config, and the config back as JSON: every field of a dataclass
(and of its nested dataclasses, dotted) is a flag, so a run's config and its command line cannot
drift apart."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Config = TypeVar("Config")


def parse_config(config_type: type[Config], argv: list[str] | None, description: str | None) -> Config:
    """config_type built from argv: `--name VALUE` per field (`--no-name` for booleans, a field
    typed Path as a path, `--name VALUE [VALUE ...]` for a tuple), `--nested.name VALUE` for a
    nested dataclass's. A ValueError of the config's own checks is a usage error."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = config_type()
    nested_names = []

    def add(prefix: str, obj: object) -> None:
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            value = getattr(obj, f.name)
            flag = f"--{prefix}{f.name}".replace("_", "-")
            if dataclasses.is_dataclass(value):
                nested_names.append(f.name)
                add(f"{prefix}{f.name}.", value)
            elif isinstance(value, bool):
                parser.add_argument(flag, dest=prefix + f.name, action=argparse.BooleanOptionalAction, default=value)
            elif isinstance(value, tuple):  # of paths or of strings
                kind = Path if "Path" in str(f.type) else str
                parser.add_argument(flag, dest=prefix + f.name, type=kind, nargs="+", default=value)
            else:
                kind = Path if "Path" in str(f.type) else type(value)
                parser.add_argument(flag, dest=prefix + f.name, type=kind, default=value)

    add("", defaults)
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in vars(parser.parse_args(argv)).items()}
    try:
        nested: dict[str, Any] = {
            name: type(getattr(defaults, name))(
                **{k.split(".", 1)[1]: v for k, v in args.items() if k.startswith(name + ".")}
            )
            for name in nested_names
        }
        flat = {k: v for k, v in args.items() if "." not in k}
        return config_type(**flat, **nested)
    except ValueError as e:  # the configs' own checks across flags
        parser.error(str(e))


def config_to_json(config: DataclassInstance) -> dict[str, Any]:
    """A dataclass config in JSON types only (paths as strings), for checkpoints and reports."""
    as_json: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    return as_json
