"""Documentation that is generated from code stays in step with it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_schema_doc_is_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("gen_schema_doc", ROOT / "scripts" / "gen_schema_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "schema.md").read_text() == module.render(), "run: python scripts/gen_schema_doc.py"
