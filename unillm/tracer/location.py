"""Where one call log lives. Kept apart from `store` so that patch() does not import the store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, init=False)
class LogLocation:
    """Where one call log lives: the database file and the spool folder beside it."""

    db_path: Path
    spool_dir: Path

    def __init__(self, db_path: str | os.PathLike[str], spool_dir: str | os.PathLike[str] | None = None) -> None:
        # Absolute, so lock messages and ATTACH name the same file whatever the cwd later becomes.
        db = Path(db_path).expanduser().absolute()
        object.__setattr__(self, "db_path", db)
        spool_path = (
            Path(spool_dir).expanduser().absolute() if spool_dir is not None else db.with_name(db.stem + ".spool")
        )
        object.__setattr__(self, "spool_dir", spool_path)
