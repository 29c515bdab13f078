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


def test_readme_routing_example_is_a_valid_config(tmp_path, monkeypatch) -> None:
    """The complete example config in the README's Routing section loads and patches as written."""
    import unillm

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Routing") :]
    example = section[section.index("```toml") + len("```toml") : section.index("```\n", section.index("```toml"))]
    (tmp_path / "unillm.toml").write_text(f'log = "{tmp_path / "calls.duckdb"}"\n{example}')
    monkeypatch.chdir(tmp_path)
    unillm.patch()
    try:
        from unillm import runtime

        settings = runtime.current().settings
        assert settings.routes["support"].target_names()[0] == "anthropic/claude-sonnet-4-5"
        assert settings.routes["assistant"].strategy == "auto"
        assert settings.budgets["support-daily"].downgrade_to == "assistant"
    finally:
        unillm.unpatch()
