"""How a batch's rows become driver parameters, without SQLAlchemy.

The writer's child process imports only this module, :mod:`netwatch.storage.driverwriter` and
the database driver: ``import sqlalchemy`` alone is about 26 MB of a process's memory, half of
what the child needed for the whole write. The parent compiles each statement with SQLAlchemy
(:func:`netwatch.storage.rowwriter.compile_plan`) into a :class:`WritePlan`: the SQL text, its
parameter order, and per column the name of the conversion SQLAlchemy would apply. The converters
here are those conversions, checked equal to SQLAlchemy's own by ``tests/netwatch/storage/test_driverwriter.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["CONVERTERS", "WritePlan", "sqlite_utc_text", "utc_instant"]

Converter = Callable[[Any], Any]


def utc_instant(value: datetime | None) -> datetime | None:
    """The instant in UTC; a naive datetime is refused (its zone would be a guess)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} refused: give it a time zone")
    return value.astimezone(UTC)


def sqlite_utc_text(value: datetime | None) -> str | None:
    """What :func:`utc_instant` then SQLAlchemy's SQLite ``DATETIME`` store, in one step.

    The batched writer binds thousands of timestamps a second; the two-step path (a dict of
    fields formatted per value) was 14 % of the writer thread in the province soak.
    """
    if type(value) is datetime and value.tzinfo is UTC:
        # What netwatch writes (datetime.now(UTC)): the text less its "+00:00", no conversion.
        return value.isoformat(" ", "microseconds")[:-6]
    utc = utc_instant(value)
    return None if utc is None else utc.replace(tzinfo=None).isoformat(" ", "microseconds")


def _last_text(to_text: Converter) -> Converter:
    """``to_text`` that gives the same object's text again without making it: the rows of one poll
    (an interface's, the poll's own) share its timestamps, and so do the polls of one scheduler
    tick; a pickled batch keeps that sharing."""
    last: list[Any] = [object(), None]

    def text(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, to_text(value)
        return last[1]

    return text


def _strict_bool(value: Any) -> bool | None:
    """SQLAlchemy's rule for a ``Boolean``: only None, True or False (or 0 and 1) go in."""
    if value not in (None, True, False):
        raise TypeError(f"not a boolean value: {value!r}")
    return None if value is None else bool(value)


def _bool_as_int(value: Any) -> int | None:
    checked = _strict_bool(value)
    return None if checked is None else int(checked)


def _to_float(value: Any) -> float | None:
    return None if value is None else float(value)


CONVERTERS: dict[str, Callable[[], Converter]] = {
    "utc": lambda: utc_instant,
    "sqlite_utc_text": lambda: _last_text(sqlite_utc_text),
    "bool": lambda: _strict_bool,
    "bool_as_int": lambda: _bool_as_int,
    "float": lambda: _to_float,
}
"""Each conversion by name, made fresh per batch (the timestamp text memo lives for one batch)."""


@dataclass(frozen=True, slots=True)
class WritePlan:
    """One table's bulk statement for one set of columns: the SQL in the driver's parameter style,
    the parameter order, and the conversion (a :data:`CONVERTERS` name, or None) of each."""

    table: str
    sql: str
    names: tuple[str, ...]
    converters: tuple[str | None, ...]
    positional: bool

    def bind(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The rows as driver parameters: tuples for a positional style, else dicts."""
        makers = [None if name is None else CONVERTERS[name]() for name in self.converters]
        pairs = list(zip(self.names, makers, strict=True))
        if self.positional:
            return [tuple([row.get(n) if c is None else c(row.get(n)) for n, c in pairs]) for row in rows]
        return [{n: row.get(n) if c is None else c(row.get(n)) for n, c in pairs} for row in rows]
