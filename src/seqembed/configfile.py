"""The machinery under ``seqembed.config``: a number's valid range declared
beside its default, a YAML value checked against its annotation, YAML files
and ``--set`` overrides read, a mistake placed on its line, and the closest
valid name offered for a mistyped one.

It knows nothing of the config's sections and keys (``seqembed.config``
declares them); it only reads the dataclass fields it is given.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from seqembed.errors import InputError
from seqembed.files import atomic_write
from seqembed.textfile import read_text


@dataclass(frozen=True)
class Range:
    """Where a number is valid: ``ge``/``gt`` the lower bound (inclusive or
    not), ``le``/``lt`` the upper one; None where there is none."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __contains__(self, value: float) -> bool:
        # Each test is written "not (value OP bound)", so NaN is in no range.
        return not (
            (self.ge is not None and not value >= self.ge)
            or (self.gt is not None and not value > self.gt)
            or (self.le is not None and not value <= self.le)
            or (self.lt is not None and not value < self.lt)
        )

    def __str__(self) -> str:
        """``>= 1 and <= 1024``, as the error and docs/settings.md say it."""
        bounds = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        return " and ".join(
            f"{sign} {_number(getattr(self, name))}"
            for name, sign in bounds
            if getattr(self, name) is not None
        )


def ranged(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A dataclass field and its valid range: ``max_tokens: int = ranged(50, gt=0)``."""
    return field(default=default, metadata={"range": Range(ge, gt, le, lt)})


def spelled(default: str, pattern: str, shown: str) -> Any:
    """A text field whose value must match ``pattern`` (a regular expression,
    whole value), described in errors and docs as ``shown``: for a choice
    with a number in it (``cuda:N``) that a ``Literal`` cannot list."""
    return field(default=default, metadata={"pattern": pattern, "shown": shown})


def field_spelling(spec: dataclasses.Field) -> str | None:
    """What a ``spelled`` field's values may be (``shown``); None for others."""
    return spec.metadata.get("shown")


def field_range(spec: dataclasses.Field) -> Range | None:
    return spec.metadata.get("range")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def check_fields(obj: Any, section: str, source: str | None, kept: Any = None) -> None:
    """Every field of the dataclass ``obj`` inside its declared range, and
    no text field an empty string (a path is a path, or null). A field with
    the value it has in ``kept`` (checked before) is not checked again."""
    for spec in dataclasses.fields(obj):
        value, key = getattr(obj, spec.name), f"{section}.{spec.name}"
        bounds = field_range(spec)
        if value is None or isinstance(value, bool):
            continue
        if kept is not None and getattr(kept, spec.name) == value:
            continue
        pattern = spec.metadata.get("pattern")
        if pattern is not None and not re.fullmatch(pattern, str(value)):
            shown = spec.metadata["shown"]
            raise InputError(f"{key} must be one of {shown}, got {value!r}", source)
        if bounds is not None and isinstance(value, (int, float)):
            if value not in bounds:
                raise InputError(
                    f"{key} must be {bounds}, got {_number(value)}", source
                )
        elif isinstance(value, str) and not value.strip():
            raise InputError(f"{key} must be a path or null, got {value!r}", source)


def coerce(value: Any, hint: Any, key: str, source: str | None) -> Any:
    """Check ``value`` against the annotation; ints are accepted for floats."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, key, source)
            except InputError as error:
                errors.append(str(error))
        raise InputError(errors[-1].split(": ", 1)[-1], source)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            choices = ", ".join(map(str, allowed))
            raise InputError(f"{key} must be one of {choices}, got {value!r}", source)
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        number = _float(value)
        if number is not None:
            if not math.isfinite(number):
                raise InputError(f"{key} must be a finite number, got {value}", source)
            return number
    elif hint is str:
        if isinstance(value, str):
            return value
    type_name = getattr(hint, "__name__", str(hint))
    raise InputError(f"{key} must be {type_name}, got {value!r}", source)


def _float(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    return None


# ---------------------------------------------------------------- names


def unknown_section(name: str, sections: Iterable[str]) -> str:
    """``unknown section 'trian'; did you mean 'train'? (sections: ...)``"""
    sections = list(sections)
    return (
        f"unknown section '{name}'{_did_you_mean(name, sections)} "
        f"(sections: {', '.join(sections)})"
    )


def unknown_key(section: str, key: str, keys: dict[str, Iterable[str]]) -> str:
    """``unknown key 'train.lr_shedule'; did you mean 'train.lr_schedule'?``

    ``keys``: each section's keys. The closest key of the same section is
    offered, else a key of that name (or close to it) in another section;
    with none close, the section's keys are listed."""
    name = f"{section}.{key}"
    own = list(keys[section])
    close = difflib.get_close_matches(key, own, n=1)
    if close:
        return f"unknown key '{name}'; did you mean '{section}.{close[0]}'?"
    elsewhere = [f"{s}.{k}" for s, names in keys.items() if s != section for k in names]
    suffixes = {dotted.split(".", 1)[1]: dotted for dotted in elsewhere}
    close = difflib.get_close_matches(key, list(suffixes), n=1)
    if close:
        return f"unknown key '{name}'; did you mean '{suffixes[close[0]]}'?"
    return f"unknown key '{name}' ({section}'s keys: {', '.join(own)})"


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


# ---------------------------------------------------------------- YAML


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``section.key=value``; the value is read as YAML (1e-3, true, null)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise InputError(f"--set expects section.key=value, got {text!r}")
    dotted, raw_value = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
        value = raw_value
    return section, key, value


def read_yaml(path: Path) -> tuple[dict, str]:
    """A YAML file of sections: the mapping and the text it was read from."""
    if not path.exists():
        raise InputError("config file not found", path)
    text = read_text(path)
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise InputError(f"invalid YAML: {error}".splitlines()[0], path, line) from None
    if not isinstance(loaded, dict):
        raise InputError("expected a mapping of sections", path)
    return loaded, text


def check_file(
    loaded: dict, text: str, path: Path, check: Callable[[dict], None]
) -> None:
    """``check`` (which raises an ``InputError``) on a file's sections; its
    error named by the file and, where one key alone is wrong, that key's line."""
    try:
        check(loaded)
    except InputError as error:
        lines = key_lines(text)
        for section, values in loaded.items():
            keys = [None] + list(values if isinstance(values, dict) else {})
            for key in keys:
                one = {section: values if key is None else {key: values[key]}}
                if key is None and isinstance(values, dict):
                    one = {section: {}}  # the section's own name
                try:
                    check(one)
                except InputError as alone:
                    if str(alone) == str(error):
                        line = lines.get((section, key))
                        raise InputError(str(error), path, line) from None
        raise InputError(str(error), path) from None


def key_lines(text: str) -> dict[tuple, int]:
    """{(section, key): line} and {(section, None): line} of a YAML mapping."""
    root = yaml.compose(text)
    lines = {}
    if isinstance(root, yaml.MappingNode):
        for section, values in root.value:
            lines[(section.value, None)] = section.start_mark.line + 1
            if isinstance(values, yaml.MappingNode):
                for key, _ in values.value:
                    lines[(section.value, key.value)] = key.start_mark.line + 1
    return lines


def write_yaml(data: dict, path: Path) -> None:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    atomic_write(Path(path), lambda out: out.write(text.encode("utf-8")))
