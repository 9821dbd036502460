"""Every config field as a user sets it: its flat name (what ``make_config`` and ``--set`` take),
its default, what it accepts, and its meaning, read from the comments beside its declaration in
:mod:`dasjax.config` (one place to write a field's meaning, so the listing never drifts from it).
``dasjax fields [SECTION]`` prints the listing.
"""
from __future__ import annotations

import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
from dataclasses import dataclass

from . import config as config_mod
from .fields import rule_of

_FIELD_LINE = re.compile(r"^    (\w+)\s*:\s*[^=]+=")          # a field declaration at class level


@dataclass(frozen=True)
class FieldDoc:
    section: str
    name: str            # the flat name make_config and --set take
    default: object
    accepts: str         # the allowed values in words ("" when the section checks the field itself)
    meaning: str         # the declaration's comments, joined


def _comment(line: str) -> str:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return ""
    return " ".join(t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT)


def field_comments(section_cls) -> dict[str, str]:
    """{field: the comment lines right above its declaration and the comment on its line}."""
    out, pending, last = {}, [], None
    for line in inspect.getsource(section_cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            if last is not None and stripped[1:].startswith("    "):   # an indented continuation of
                out[last] = f"{out[last]} {text}".strip()                # the comment on the field's line
            elif not text.startswith("---"):                   # a group heading, not a field's meaning
                pending.append(text)
                last = None
            continue
        match = _FIELD_LINE.match(line)
        last = match.group(1) if match else None
        if match:
            out[last] = " ".join(pending + [_comment(line)]).strip()
        pending = []
    return out


def _accepts(f: dataclasses.Field) -> str:
    rule = rule_of(f)
    if rule is None:
        return ""
    if rule.kind in ("choice", "registered"):
        text = ", ".join(str(v) for v in rule.allowed())
        text = f"one of {text}" + (" (or a registered name)" if rule.kind == "registered" else "")
    elif rule.kind == "flag":
        text = "true or false"
    elif rule.kind == "integer":
        text = "an integer"
    else:
        text = rule.describe() + (", odd" if rule.odd else "")
    return text + (", or none" if rule.optional else "")


def describe_fields(section: str | None = None) -> list[FieldDoc]:
    """The fields of one config section (problem, space, schedule, search, retrain, run) or all."""
    if section is not None and section not in config_mod.SECTIONS:
        raise ValueError(f"section {section!r} is not a config section; choose one of {list(config_mod.SECTIONS)}")
    out = []
    for sec, cls in config_mod.SECTIONS.items():
        if section is not None and sec != section:
            continue
        comments = field_comments(cls)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            out.append(FieldDoc(sec, config_mod.flat_name(sec, f.name) or f"{sec}.{f.name}", default, _accepts(f),
                                comments.get(f.name, "")))
    return out


def fields_text(section: str | None = None, width: int = 100) -> str:
    """The listing ``dasjax fields`` prints: one block per section, one line per field."""
    lines, current = [], None
    for d in describe_fields(section):
        if d.section != current:
            current = d.section
            doc = (inspect.getdoc(config_mod.SECTIONS[current]) or "").splitlines()[0]
            lines += ["" if lines else None, f"[{current}] {doc}"]
        head = f"  {d.name} = {d.default!r}" + (f"  ({d.accepts})" if d.accepts else "")
        lines.append(head)
        if d.meaning:
            lines += textwrap.wrap(d.meaning, width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(line for line in lines if line is not None)
