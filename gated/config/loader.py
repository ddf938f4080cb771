"""Reading the config file: every problem at once, each with its path, line and a hint.

``load_config`` either returns a valid ``GatedConfig`` or raises ``ConfigError`` carrying every
problem at once, each with its dotted path, the line in the file where it can be found, and a
did-you-mean for misspelled keys, so that one run of ``gated check-config`` finds them all.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from drivers.registry import model_for, variant_problem, variant_tags
from gated.config.checks import file_problems
from gated.config.common import DEFAULT_CONFIG_PATH, ConfigError, ConfigProblem
from gated.config.model import GatedConfig
from gated.config.problems import CrossCheckError

__all__ = ["DEFAULT_CONFIG_PATH", "ConfigError", "ConfigProblem", "check_config", "load_config",
           "parse_config"]

def check_config(path: str | Path) -> GatedConfig:
    """``load_config`` plus the files the config names (keys, credentials, state directory),
    as this user sees them: what ``gated check-config`` and ``gated run`` ask before running."""
    cfg = load_config(path)
    problems = file_problems(cfg)
    if problems:
        lines = _key_lines(Path(path).read_text(encoding="utf-8"))
        raise ConfigError(str(path), [ConfigProblem(p, m, _line_of(p.split("."), lines))
                                      for p, m in problems])
    return cfg


def load_config(path: str | Path) -> GatedConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), [ConfigProblem("", "file not found; pass -c FILE or create "
                                                 "it from config/gated.example.toml")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(p), [ConfigProblem("", f"cannot read: {e}")]) from None
    return parse_config(text, source=str(p))


def parse_config(text: str, *, source: str = "<string>") -> GatedConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(source, [ConfigProblem(
            "", f"not valid TOML: {e}", int(m.group(1)) if m else None)]) from None
    try:
        return GatedConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(source, _problems(e, data, text)) from None


def _problems(err: ValidationError, data: dict[str, Any], text: str) -> list[ConfigProblem]:
    lines = _key_lines(text)
    out: list[ConfigProblem] = []
    for item in err.errors():
        cross = (item.get("ctx") or {}).get("error")
        if isinstance(cross, CrossCheckError):  # one validator, several problems: each its own
            out += [ConfigProblem(path, msg, _line_of(path.split("."), lines))
                    for path, msg in cross.problems]
            continue
        loc = [str(x) for x in item["loc"]]
        loc = _strip_union_tags(loc, data)
        msg = item["msg"]
        if item["type"] == "union_tag_invalid" and (bad := _profile_problem(loc, data)):
            loc, msg = [*loc, bad[0]], bad[1]
        elif item["type"] == "extra_forbidden":
            msg = "unknown key" + _did_you_mean(loc, data)
        elif item["type"] == "union_tag_invalid":
            msg = f"unknown device type; {msg}"
        elif item["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.append(ConfigProblem(".".join(loc), msg, _line_of(loc, lines)))
    return out


def _strip_union_tags(loc: list[str], data: dict[str, Any]) -> list[str]:
    out: list[str] = []
    node: Any = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            out.append(part)
            node = node[int(part)]
        elif part in variant_tags(node):
            continue  # a discriminator value pydantic inserts (type, profile)
        else:
            out.append(part)
            node = None
    return out


def _profile_problem(loc: list[str], data: dict[str, Any]) -> tuple[str, str] | None:
    """A device table whose profile key names no profile: (key, message with the choices)."""
    node: Any = data
    for part in loc:
        node = node.get(part) if isinstance(node, dict) else None
    return variant_problem(node) if len(loc) == 2 and loc[0] == "devices" else None


def _did_you_mean(loc: list[str], data: dict[str, Any]) -> str:
    known = _known_keys(loc[:-1], data)
    match = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    if match:
        return f"; did you mean {match[0]!r}?"
    if known:
        return f"; known keys here: {', '.join(sorted(known))}"
    return ""


def _known_keys(loc: list[str], data: dict[str, Any]) -> list[str]:
    """Field names valid at ``loc``, following dict values and device ``type`` tags."""
    from typing import get_args, get_origin

    model: Any = GatedConfig
    node: Any = data
    for part in loc:
        node = node.get(part) if isinstance(node, dict) else None
        if model is None:
            return []
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            model = field.annotation if field else None
        elif get_origin(model) is dict:
            model = get_args(model)[1]
        model = _resolve(model, node)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _resolve(model: Any, node: Any) -> Any:
    from typing import Annotated, get_args, get_origin

    if isinstance(node, dict) and (device := model_for(node)) is not None and \
            get_origin(model) is Annotated:
        return device  # a device table: the registry knows its model (profile included)
    if get_origin(model) is Annotated:
        model = get_args(model)[0]
    args = [a for a in get_args(model) if a is not type(None)]
    if get_origin(model) is dict:
        return model
    if args and all(isinstance(a, type) and issubclass(a, BaseModel) for a in args):
        if len(args) == 1:
            return args[0]
        tag = node.get("type") if isinstance(node, dict) else None
        for a in args:
            if a.model_fields.get("type") and tag in get_args(a.model_fields["type"].annotation):
                return a
        return None
    return model


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each dotted key path to the line defining it (tables and plain keys)."""
    out: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for n, line in enumerate(text.splitlines(), start=1):
        if m := _HEADER.match(line):
            table = tuple(_unquote(x) for x in m.group(1).split("."))
            out.setdefault(table, n)
        elif m := _KEY.match(line):
            key = tuple(_unquote(x) for x in m.group(1).split("."))
            out.setdefault(table + key, n)
    return out


def _unquote(s: str) -> str:
    return s.strip().strip("\"'")


def _line_of(loc: list[str], lines: dict[tuple[str, ...], int]) -> int | None:
    """The line defining ``loc`` or its closest parent; for a table defined only through its
    sub-tables (``[zones.hall]`` for ``zones``), the first of those."""
    for i in range(len(loc), 0, -1):
        if (key := tuple(loc[:i])) in lines:
            return lines[key]
    inside = [n for key, n in lines.items() if key[:len(loc)] == tuple(loc)]
    return min(inside, default=None)
