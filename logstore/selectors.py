"""Version selectors: the one resolver from "which version" to a version number, for the API, SQL, the change
feed and the CLI.

Keyword form, `resolve(files, version=None, *, as_of=None, tag=None)` (Table's read verbs, schema, commit_info,
tag and restore; SQL's `AS OF VERSION n`, `AS OF VERSION 'tag'` and `AS OF TIMESTAMP t`; the CLI's --version,
--at and --tag): at most one of

- `version`: a version number (VersionNotFoundError, naming the latest version, if there is no such version);
- `as_of`: a moment (a datetime, date, pandas Timestamp or ISO-8601 text; UTC without an offset): the latest
  version committed at or before it (TimestampError if it is in the future or before the first commit);
- `tag`: the version a tag names (TagNotFoundError if there is no such tag);

and none means the latest version. More than one raises SelectorError (`given`).

One-value form, `point(files, selector, *, start=False)` (the bounds of `changes` and `diff`, SQL's
`table_changes` and `table_diff`, the CLI's diff and changes arguments): an int is a version, a string of digits
(`"3"`) too, a string starting with ``@`` (`"@2022-01-01 12:00"`) or a datetime, date or pandas Timestamp is a
moment, any other string a tag. A moment means the table as of that moment, except with `start=True` (the start of
a change feed), where it means the first version committed at or after it (the latest + 1 if there is none), so
that `changes("@t1", "@t2")` is exactly the commits made between t1 and t2.

Damage at the top of the log (head hint, `_head.json`; see log.py): an explicit version or tag at or below the
newest commit record present stays readable when that record is damaged, or when the hint shows that a newer record
was lost; anything resolved against the top (no selector, a version or tag above the newest record, a moment at or
after the newest commit) checks the hint and raises HeadMissingError if the newest record was lost.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from . import timestamps
from .errors import InvalidInputError, SelectorError

if TYPE_CHECKING:
    from .log import Log
    from .planner import TableFiles

# The types of the public API's selector parameters (Table's read verbs, schema, commit_info, tag, restore,
# changes, diff; logstore.read_*). A pandas Timestamp is a datetime.
Version: TypeAlias = int
"""A version number (keyword form: `version=`)."""
Tag: TypeAlias = str
"""A tag name (keyword form: `tag=`)."""
Moment: TypeAlias = str | dt.date | dt.datetime
"""A moment (keyword form: `as_of=`): a datetime, a date (midnight UTC) or ISO-8601 text; UTC without an offset."""
Selector: TypeAlias = int | str | dt.date | dt.datetime
"""A one-value selector (`changes`, `diff`): a version, a string of digits, '@<timestamp>', a tag name or a moment."""


@dataclass(frozen=True)
class Point:
    """A resolved one-value selector: the version, and the moment it was given as (None for a version or tag)."""

    version: int
    moment: dt.datetime | None = None


def given(version: Any = None, as_of: Any = None, tag: Any = None) -> dict[str, Any]:
    """The keyword selectors given (not None), by name; SelectorError if more than one is."""
    chosen = {k: v for k, v in (("version", version), ("as_of", as_of), ("tag", tag)) if v is not None}
    if len(chosen) > 1:
        raise SelectorError(chosen)
    return chosen


def resolve(files: TableFiles, version: Version | None = None, *, as_of: Moment | None = None, tag: Tag | None = None) -> int:
    """The version the keyword selectors name; the latest version without one (see the module docstring)."""
    given(version, as_of, tag)
    from . import purge

    purge.settle(files)  # a purge interrupted after its commit is finished before anything is read
    log = files.log
    if version is not None:
        return log.check_version(version, _bound(log, version))
    if as_of is not None:
        visible = cast(int, log.head_version())  # not None: the table exists (its Table was opened)
        found = log.version_at(timestamps.parse(as_of), visible)
        return found if found < visible else log.latest()  # at the top: no newer commit may be lost
    if tag is not None:
        tagged = files.tags.get(tag)
        return log.check_version(tagged, _bound(log, tagged))
    return log.latest()


def _bound(log: Log, version: Any) -> int:
    """The latest version to check an explicit `version` against: the newest record present, so that damage at the
    top of the log leaves older versions readable; checked against the head hint above it."""
    number = isinstance(version, int) and not isinstance(version, bool)
    known = log.known_head
    if number and known is not None and 0 <= version <= known:
        return known  # a version this handle has seen exist: no probe (records are never removed but by repair)
    visible = cast(int, log.head_version())  # not None: the table exists (its Table was opened)
    below = number and 0 <= version <= visible
    return visible if below else log.latest()


def parse(selector: Selector) -> tuple[str, Any]:
    """A one-value selector as a keyword selector: ("version", int), ("as_of", UTC datetime) or ("tag", name)."""
    if isinstance(selector, bool):
        raise InvalidInputError(selector, f"a version selector must be a version, a tag or a moment, not {selector!r}")
    if isinstance(selector, int):
        return "version", selector
    if isinstance(selector, str):
        text = selector.strip()
        if text.startswith("@"):
            return "as_of", timestamps.parse(text[1:])
        if text.isdigit():
            return "version", int(text)
        if not text:
            raise InvalidInputError(selector, "an empty string is not a version selector")
        return "tag", text
    if isinstance(selector, (dt.datetime, dt.date)) or hasattr(selector, "to_pydatetime"):
        return "as_of", timestamps.parse(selector)
    raise InvalidInputError(
        selector, f"a version selector must be an int version, a tag name, '@<timestamp>' or a datetime, not {type(selector).__name__}"
    )


def point(files: TableFiles, selector: Selector, *, start: bool = False) -> Point:
    """The version a one-value selector names (see the module docstring); `start=True` for the start of a change
    feed."""
    kind, value = parse(selector)
    if kind != "as_of":
        return Point(resolve(files, **{kind: value}))
    if start:
        return Point(_first_at_or_after(files.log, value), value)
    return Point(resolve(files, as_of=value), value)


def _first_at_or_after(log: Log, moment: dt.datetime) -> int:
    """The first version committed at or after `moment` (the latest + 1 if there is none yet)."""
    latest = log.latest()
    if moment <= log.read(0).commit.timestamp:
        return 0
    at = log.version_at(moment, latest)
    return at if log.read(at).commit.timestamp == moment else at + 1
