"""Writers for `limitr convert`: any tree to JSON, YAML, TOML or Stof, losslessly.

Numbers are written exactly (Decimal, positional notation). TOML has no null: null fields are left out, which
is lossless for policies because every nullable field means the same absent as null.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import tomli_w
import yaml

from limitr_py.units import UNITS, format_decimal, parse_quantity

_STOF_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")  # used with fullmatch: `$` would let "A\n" through
# Words the Stof reader treats specially in key or value position; quoting them keeps the meaning obvious.
_STOF_RESERVED = {"true", "false", "null", "const", "fn", "async", "import", "root", "new", "as", "data"}
_STOF_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def dump(tree: Any, format: str) -> str:
    """Serialize a document tree. `format`: json | yaml | toml | stof."""
    if format == "json":
        return _json(tree, 0) + "\n"
    if format == "yaml":
        return yaml.dump(tree, Dumper=_YamlDumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
    if format == "toml":
        return tomli_w.dumps(_drop_nulls(tree))
    if format == "stof":
        return _stof_members(tree, 0) + "\n"
    raise ValueError(f"unknown format `{format}`")


def _json(value: Any, depth: int) -> str:
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_json(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(f"{inner}{_json(v, depth + 1)}" for v in value) + "\n" + pad + "]"
    if isinstance(value, Decimal) and not isinstance(value, bool):
        return format_decimal(value)
    return json.dumps(value, ensure_ascii=False)


class _YamlDumper(yaml.SafeDumper):
    pass


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    text = format_decimal(value)
    tag = "tag:yaml.org,2002:int" if "." not in text else "tag:yaml.org,2002:float"
    return dumper.represent_scalar(tag, text)


_YAML_BREAKS = ("\x85", "\u2028", "\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML writes NEL/LS/PS unescaped in plain or single-quoted scalars, where YAML reads them as line
    # breaks; double quotes escape them.
    style = '"' if any(ch in value for ch in _YAML_BREAKS) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_YamlDumper.add_representer(Decimal, _represent_decimal)
_YamlDumper.add_representer(str, _represent_str)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _stof_key(key: str) -> str:
    if _STOF_KEY.fullmatch(key) and key not in _STOF_RESERVED:
        return key
    return _stof_string(key)


def _stof_string(text: str) -> str:
    return "'" + "".join(_STOF_ESCAPES.get(ch, ch) for ch in text) + "'"


def _stof_value(value: Any, depth: int) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        inline = [f"{_stof_key(str(k))}: {_stof_value(v, depth + 1)}" for k, v in value.items()]
        if all("\n" not in i for i in inline) and sum(len(i) + 2 for i in inline) < 72:
            return "{ " + ", ".join(inline) + " }"
        return "{\n" + _stof_members(value, depth + 1) + "\n" + "    " * depth + "}"
    if isinstance(value, list):
        items = [_stof_value(v, depth + 1) for v in value]
        if all("\n" not in i for i in items) and sum(len(i) for i in items) < 80:
            return "[" + ", ".join(items) + "]"
        inner = "    " * (depth + 1)
        return "[\n" + ",\n".join(inner + i for i in items) + ",\n" + "    " * depth + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return format_decimal(value)
    if isinstance(value, str):
        return _stof_quantity(value) or _stof_string(value)
    raise TypeError(f"cannot write {type(value).__name__} as Stof")


def _stof_quantity(text: str) -> str | None:
    """`'1GB'` → `1GB` when the literal reads back as exactly the same text."""
    try:
        q = parse_quantity(text)
    except ValueError:
        return None
    if q.unit is None or q.unit not in UNITS:
        return None
    literal = f"{format_decimal(q.amount)}{q.unit}"
    return literal if literal == text else None


def _stof_members(tree: dict[str, Any], depth: int) -> str:
    pad = "    " * depth
    return "\n".join(f"{pad}{_stof_key(str(k))}: {_stof_value(v, depth)}" for k, v in tree.items())
