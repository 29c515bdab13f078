"""Write docs/schema.md from unillm/tracer/schema.py (a test checks it is up to date)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from unillm.tracer.schema import MIGRATIONS, TABLE_KEYS, TABLES, VIEWS  # noqa: E402


def render() -> str:
    lines = [
        "# Call log schema",
        "",
        "Generated from `unillm/tracer/schema.py` by `python scripts/gen_schema_doc.py`.",
        "",
        "The call log is a DuckDB database (`calls.duckdb`) plus a spool folder of recent rows;",
        "`unillm sql` and `unillm.sql()` show both through views named after the tables below,",
        "plus the derived views listed after them.",
        "Times are UTC; durations are milliseconds; costs are US dollars.",
        "",
    ]
    for table, columns in TABLES.items():
        lines += [
            f"## `{table}`",
            "",
            f"Key: `{', '.join(TABLE_KEYS[table])}` (ingestion skips rows whose key is already stored).",
            "",
            "| column | type | meaning |",
            "|---|---|---|",
        ]
        lines += [f"| `{c.name}` | `{c.sql_type}` | {c.meaning} |" for c in columns]
        lines.append("")
    for name, view in VIEWS.items():
        lines += [f"## View `{name}`", "", view.meaning, "", "```sql", view.select, "```", ""]
    lines += ["## Migrations", "", "Applied in order, once per log file, recorded in `_unillm_migrations`:", ""]
    lines += [f"- `{m.name}`" for m in MIGRATIONS]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    target = ROOT / "docs" / "schema.md"
    target.write_text(render())
    print(f"wrote {target}")
