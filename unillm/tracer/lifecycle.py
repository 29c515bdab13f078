"""Keeping the call log small and getting it out: `prune` deletes old rows, `export` writes Parquet.

Both follow the store's lock discipline (see `unillm.tracer.store`): nobody keeps `calls.duckdb`
open. `prune` folds the spool first, then opens the file read-write for one transaction, retrying
while another process holds the lock (DuckDB's lock is try-only), and closes it again. `export`
reads like `store.query`: an in-memory DuckDB with the file attached read-only plus the spool, so
rows not folded yet are exported too.

`import unillm.tracer.lifecycle` does not import duckdb; every function that needs it imports it.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from unillm.tracer import schema, store
from unillm.tracer.location import LogLocation
from unillm.tracer.store import quote_ident, quote_literal

if TYPE_CHECKING:
    import duckdb

__all__ = ["LifecycleError", "PruneResult", "export", "parse_duration", "prune"]

# How long prune and export wait for a lock held by someone else (folds hold it for milliseconds).
LOCK_WAIT_S = 10.0

_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
DURATION_FORMS = "a whole number followed by d (days), h (hours) or m (minutes), e.g. 30d, 12h, 90m"


class LifecycleError(RuntimeError):
    """prune/export could not run (the log is busy, or the output cannot be written)."""


def parse_duration(text: str) -> _dt.timedelta:
    """`30d`, `12h`, `90m` → timedelta; ValueError naming the accepted forms otherwise."""
    m = _DURATION.match(text)
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration; expected {DURATION_FORMS}")
    return _dt.timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})


def _ts(value: _dt.datetime) -> str:
    """An aware datetime as a TIMESTAMPTZ SQL literal (no pytz round trip through parameters)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return f"CAST({quote_literal(value.isoformat())} AS TIMESTAMPTZ)"


# --------------------------------------------------------------------------------------------
# prune


@dataclass(frozen=True)
class PruneResult:
    cutoff: _dt.datetime
    dry_run: bool
    rows: dict[str, int] = field(default_factory=dict)  # rows deleted (or that would be) per table
    bytes_before: int = 0
    bytes_after: int = 0


def prune(
    loc: LogLocation, cutoff: _dt.datetime, *, dry_run: bool = False, lock_wait_s: float = LOCK_WAIT_S
) -> PruneResult:
    """Delete every row dated before `cutoff` from every table, in one transaction.

    The spool is folded first, so old rows still waiting there go too. Attempts of pruned calls
    are deleted with them (whatever their own time). With `dry_run` the counts are computed and
    nothing is deleted. Afterwards the file is CHECKPOINTed so freed space is given back.
    """
    t_end = time.monotonic() + lock_wait_s
    folded = store.fold(loc, max_wait_s=lock_wait_s)
    if not folded.folded:
        raise LifecycleError(f"could not fold the spool before pruning: {folded.reason}")
    if folded.bad:
        store.log.warning("%d corrupt spool segment(s) set aside while folding before prune", len(folded.bad))

    before = _size(loc.db_path)
    cut = _ts(cutoff)
    pruned_calls = f"SELECT call_id FROM calls WHERE {quote_ident(schema.time_column('calls'))} < {cut}"
    where: dict[str, str] = {}
    for table in schema.TABLES:
        cond = f"{quote_ident(schema.time_column(table))} < {cut}"
        if table != "calls" and any(c.name == "call_id" for c in schema.TABLES[table]):
            cond = f"({cond} OR call_id IN ({pruned_calls}))"
        where[table] = cond
    # Children before their parent, so the subquery on calls still sees the rows being pruned.
    order = [t for t in where if t != "calls"] + ["calls"]

    try:
        with store.writing(loc, max_wait_s=max(t_end - time.monotonic(), 0.001)) as con:
            rows: dict[str, int] = {}
            con.begin()
            try:
                for table in order:
                    verb = "SELECT count(*) FROM" if dry_run else "DELETE FROM"
                    result = con.execute(f"{verb} {table} WHERE {where[table]}").fetchall()
                    rows[table] = int(result[0][0]) if result else 0
                if dry_run:
                    con.rollback()
                else:
                    con.commit()
            except BaseException:
                con.rollback()
                raise
            if not dry_run and any(rows.values()):
                con.execute("CHECKPOINT")
    except store.LogBusyError as busy:
        raise LifecycleError(f"{busy.reason}; close it and try again") from None
    ordered = {t: rows[t] for t in schema.TABLES}
    return PruneResult(cutoff, dry_run, ordered, before, _size(loc.db_path))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# --------------------------------------------------------------------------------------------
# export

Format = Literal["parquet", "csv"]


def export(
    loc: LogLocation,
    out: Path,
    *,
    fmt: Format = "parquet",
    since: _dt.date | None = None,
    lock_wait_s: float = LOCK_WAIT_S,
) -> dict[str, int]:
    """Write every table to `out/<table>/day=YYYY-MM-DD/*.<fmt>`, partitioned by UTC day.

    Reads database + spool (rows not folded yet are included), like `store.query`. `since` keeps
    rows from that UTC day on. Files of the same day from an earlier export are overwritten.
    Returns rows written per table.
    """
    out = Path(out).expanduser().absolute()
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    with store.reading(loc, lock_wait_s=lock_wait_s) as con:
        return _copy_all(con, out, options, since)


def _copy_all(con: duckdb.DuckDBPyConnection, out: Path, options: str, since: _dt.date | None) -> dict[str, int]:
    import duckdb

    written: dict[str, int] = {}
    for table in schema.TABLES:
        col = quote_ident(schema.time_column(table))
        where = ""
        if since is not None:
            start = _dt.datetime.combine(since, _dt.time(), tzinfo=_dt.timezone.utc)
            where = f" WHERE {col} >= {_ts(start)}"
        target = out / table
        target.mkdir(parents=True, exist_ok=True)
        sql = (
            f"COPY (SELECT *, CAST({col} AT TIME ZONE 'UTC' AS DATE) AS day FROM temp.main.{quote_ident(table)}{where}) "
            f"TO {quote_literal(str(target))} ({options}, PARTITION_BY (day), OVERWRITE_OR_IGNORE)"
        )
        try:
            result = con.execute(sql).fetchall()
        except duckdb.IOException as e:
            raise LifecycleError(f"cannot write {target}: {str(e).splitlines()[0]}") from None
        written[table] = int(result[0][0]) if result else 0
    return written
