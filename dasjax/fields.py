"""Declared config fields: each field states the values it accepts once, next to its default, and
one validator (:func:`check_fields`) reads those declarations.

``blur_units: str = choice("omega", ("omega", "linspace", "pixel"))`` is a dataclass field whose
metadata holds a :class:`Rule`; a frozen config section that derives from :class:`Checked` checks
every declared field after construction, with errors that name the field and the allowed values.
Choices may come from a registry (:mod:`dasjax.registry`), so a user's registered problem or space
is allowed without editing the config.  Rules between fields stay in the section's ``_check``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """What one config field accepts."""
    kind: str                        # "choice" | "registered" | "number" | "integer" | "flag"
    choices: Any = None              # "choice": a tuple; "registered": a dasjax.registry.Registry
    low: float | None = None         # "number": bounds (None: unbounded)
    high: float | None = None
    low_open: bool = True            # "number": low excluded (a positive number: low=0, open)
    high_open: bool = False
    integer: bool = False            # "number": whole numbers only
    odd: bool = False                # "number": odd integers only
    optional: bool = False           # None is allowed too
    label: str | None = None         # the name errors use, when it differs from the field name

    def allowed(self) -> tuple:
        """The accepted values of a choice field (a registry's names as they are now)."""
        if self.kind == "registered":
            return self.choices.names()
        return tuple(self.choices) if self.kind == "choice" else ()

    def check(self, name: str, value: Any) -> None:
        """Raise ValueError naming the field and what it accepts, unless ``value`` is allowed."""
        name = self.label or name
        if value is None and self.optional:
            return
        if self.kind == "registered":
            self.choices.get(value)           # raises naming the entries and how to add one
            return
        if self.kind == "choice":
            if not any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in self.choices):
                raise ValueError(f"{name}={value!r} is not allowed; choose one of {list(self.choices)}")
            return
        if self.kind == "flag":
            if not isinstance(value, bool):
                raise ValueError(f"{name}={value!r} must be True or False")
            return
        if self.kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}={value!r} must be an integer")
            return
        self._check_number(name, value)

    def _check_number(self, name: str, value: Any) -> None:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = number and math.isfinite(value)
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.high_open else value <= self.high
        if ok and self.integer:
            ok = float(value).is_integer()
        if not ok:
            prefix = "None or " if self.optional else ""
            raise ValueError(f"{name}={value!r} must be {prefix}{self.describe()}")
        if self.odd and int(value) % 2 != 1:
            raise ValueError(f"{name}={value!r} must be odd")

    def describe(self) -> str:
        """The accepted range in words, as errors and docs print it."""
        what = "integer" if self.integer else "number"
        if self.low == 0 and self.high is None:
            return f"a positive {what}" if self.low_open else f"a non-negative {what}"
        if self.high is None:
            return f"a {what} {'>' if self.low_open else '>='} {self.low}"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"in {left}{self.low:g}, {self.high:g}{right}"


def _declared(default, rule: Rule):
    return dataclasses.field(default=default, metadata={"rule": rule})


def choice(default, choices, **kw):
    """A field whose value is one of ``choices`` (a tuple)."""
    return _declared(default, Rule("choice", choices=tuple(choices), **kw))


def registered(default, registry, **kw):
    """A field whose value is a name in ``registry`` (built in or added by the user)."""
    return _declared(default, Rule("registered", choices=registry, **kw))


def positive(default, integer: bool = False, odd: bool = False, **kw):
    """A field that takes a positive (finite) number, optionally a whole or odd one."""
    return _declared(default, Rule("number", low=0, integer=integer or odd, odd=odd, **kw))


def nonneg(default, integer: bool = False, **kw):
    """A field that takes a number >= 0."""
    return _declared(default, Rule("number", low=0, low_open=False, integer=integer, **kw))


def interval(default, low, high, low_open: bool = True, high_open: bool = False, **kw):
    """A field that takes a number in an interval, e.g. ``(0, 1]``."""
    return _declared(default, Rule("number", low=low, high=high, low_open=low_open, high_open=high_open, **kw))


def flag(default: bool):
    """A field that is True or False."""
    return _declared(default, Rule("flag"))


def integer(default: int):
    """A field that takes any integer (negative too)."""
    return _declared(default, Rule("integer"))


def rule_of(f: dataclasses.Field) -> Rule | None:
    """The declared rule of a dataclass field (None: the section checks it itself)."""
    return f.metadata.get("rule")


def check_fields(section) -> None:
    """Check every declared field of a config section against its rule."""
    for f in dataclasses.fields(section):
        rule = rule_of(f)
        if rule is not None:
            rule.check(f.name, getattr(section, f.name))


class Checked:
    """Base of a frozen config section: declared fields are checked, then the section's own
    ``_check`` runs (normalisation and rules between fields)."""

    def __post_init__(self):
        self._normalize()
        check_fields(self)
        self._check()

    def _normalize(self) -> None:
        """Bring accepted spellings into their stored form (a list -> a tuple) before the checks."""

    def _check(self) -> None:
        """Rules that relate several fields."""
