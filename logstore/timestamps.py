"""Commit timestamps: parsing user input, the on-disk text form, and the strictly-increasing rule."""

from __future__ import annotations

import datetime as dt
import re

from .errors import TimestampError

UTC = dt.UTC
ONE_MS = dt.timedelta(milliseconds=1)
_ON_DISK = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{6})Z")


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def parse(value) -> dt.datetime:
    """A tz-aware UTC datetime from a datetime, a date, an ISO-8601 string or a pandas Timestamp.

    A value without an offset is UTC; a date alone means midnight UTC.
    """
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        moment = _parse_text(value)
    elif hasattr(value, "to_pydatetime"):
        moment = value.to_pydatetime()
    else:
        raise TimestampError(value, f"cannot read {value!r} as a timestamp (give a datetime or ISO-8601 text)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _to_utc(moment, value)


def _to_utc(moment: dt.datetime, value) -> dt.datetime:
    """`moment` in UTC; a TimestampError if that falls outside the years 0001-9999 (the on-disk form's range)."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise TimestampError(value, f"timestamp {value!r} lies outside the years 0001-9999 once converted to UTC") from None


def _parse_text(text: str) -> dt.datetime:
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    if len(cleaned) > 3 and cleaned[-3] in "+-" and cleaned[-3:].lstrip("+-").isdigit() and ":" in cleaned:
        cleaned += ":00"  # '12:00:00+08' -> '12:00:00+08:00'
    try:
        return dt.datetime.fromisoformat(cleaned)
    except ValueError:
        raise TimestampError(text, f"cannot read {text!r} as a timestamp (use ISO-8601, e.g. 2022-01-01 12:00:00)") from None


def encode(moment: dt.datetime) -> str:
    """The on-disk form: UTC, microseconds, 'Z' suffix, e.g. 2022-01-01T12:00:00.000000Z.

    Fixed width, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, for every year 0001-9999 (strftime's %Y does not zero-pad years
    before 1000 on every platform), so that text order is time order (checkpoint.py relies on it).
    """
    u = _to_utc(moment, moment)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"


def decode(text: str) -> dt.datetime:
    """A timestamp in exactly the on-disk form (see encode); ValueError for anything else."""
    match = _ON_DISK.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"timestamp {text!r} is not in the form YYYY-MM-DDTHH:MM:SS.ffffffZ")
    return dt.datetime(*(int(g) for g in match.groups()), tzinfo=UTC)


def next_commit_time(previous: dt.datetime | None, requested=None) -> dt.datetime:
    """The timestamp of a new commit: strictly after `previous`, never in the future.

    Without a requested time it is now, or previous + 1 ms if the clock went back. A requested time (a backfill)
    must lie after the previous commit and not in the future.
    """
    current = now()
    if requested is None:
        if previous is not None and current <= previous:
            return previous + ONE_MS
        return current
    moment = parse(requested)
    if moment > current:
        raise TimestampError(requested, f"timestamp {encode(moment)} is in the future (now is {encode(current)})")
    if previous is not None and moment <= previous:
        raise TimestampError(
            requested,
            f"timestamp {encode(moment)} is not after the previous commit at {encode(previous)}",
        )
    return moment
