"""Render docs/compatibility.md from the framework tests of one or more runs.

Each run (one environment, so one openai SDK version) merges its results into the file: what it
ran replaces the same cells, the rest stays. The results themselves travel in a comment at the
end of the file, so a later run (another environment) can merge without re-running this one.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

WIRE_ORDER = ("openai", "anthropic", "gemini")
WIRE_TITLES = {"openai": "OpenAI wire", "anthropic": "→ Anthropic", "gemini": "→ Gemini"}
MAJORS = (1, 2, 3)
_DATA = re.compile(r"<!-- compatibility-data\n(.*?)\n-->", re.S)
_MARK = {"passed": "✅", "failed": "❌", "skipped": "skipped", "xfailed": "❌ (xfail)"}


def _openai_spec(dist: str) -> str:
    """The openai requirement a framework's own metadata states: its plain requirement, else the
    one of its ``openai`` extra (pydantic-ai-slim[openai]); '' when it names none."""
    found: dict[bool, str] = {}
    for req in metadata.requires(dist) or ():
        name = re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0]
        if name.lower() != "openai":
            continue
        spec, _, marker = req[len(name) :].partition(";")
        if "extra" not in marker:
            found[True] = spec.strip().strip("()")
        elif re.search(r"extra\s*==\s*['\"]openai['\"]", marker):
            found.setdefault(False, spec.strip().strip("()"))
    return found.get(True, found.get(False, ""))


def _allows(spec: str, major: int) -> bool:
    """Whether a requirement like '>=1.108.1,<3' admits some release of this openai major."""
    if not spec:
        return True
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    specifiers = SpecifierSet(spec)
    probes = [f"{major}.{minor}.{patch}" for minor in range(0, 200) for patch in (0, 1, 2)]
    return any(Version(v) in specifiers for v in probes)


def _cell(outcomes: list[str]) -> str:
    if "failed" in outcomes:
        return _MARK["failed"]
    if "xfailed" in outcomes:
        return _MARK["xfailed"]
    if outcomes and all(o == "skipped" for o in outcomes):
        return _MARK["skipped"]
    return _MARK["passed"] if outcomes else ""


def collect(results: dict[tuple[str, str, str], list[str]]) -> list[dict[str, object]]:
    """This run's rows: one per framework, with versions and per-(feature, wire) outcomes."""
    import openai

    rows: dict[str, dict[str, object]] = {}
    for (framework, wire, feature), outcomes in results.items():
        row = rows.setdefault(
            framework,
            {
                "framework": framework,
                "version": metadata.version(framework),
                "openai": openai.__version__,
                "openai_spec": _openai_spec(framework),
                "features": {},
            },
        )
        features: dict[str, dict[str, str]] = row["features"]  # type: ignore[assignment]
        features.setdefault(feature, {})[wire] = _cell(outcomes)
    return list(rows.values())


def _major(version: object) -> int:
    return int(str(version).split(".", 1)[0])


def merge(path: Path, results: dict[tuple[str, str, str], list[str]]) -> None:
    """Write the table: this run's cells replace the same (framework, openai major, feature,
    wire) cells of earlier runs, whose other cells stay unless the framework's or the SDK's
    version changed (then the row is this run's alone)."""
    rows = {(str(r["framework"]), _major(r["openai"])): r for r in _stored(path)}
    for row in collect(results):
        key = (str(row["framework"]), _major(row["openai"]))
        old = rows.get(key)
        if old is not None and (old["version"], old["openai"]) == (row["version"], row["openai"]):
            features: dict[str, dict[str, str]] = old["features"]  # type: ignore[assignment]
            for feature, by_wire in row["features"].items():  # type: ignore[attr-defined]
                features.setdefault(feature, {}).update(by_wire)
        else:
            rows[key] = row
    path.write_text(render(list(rows.values())))


def _stored(path: Path) -> list[dict[str, object]]:
    found = _DATA.search(path.read_text()) if path.exists() else None
    return json.loads(found.group(1)) if found else []


def render(rows: list[dict[str, object]]) -> str:
    rows = sorted(rows, key=lambda r: (str(r["framework"]), _major(r["openai"])))
    frameworks = list(dict.fromkeys(str(r["framework"]) for r in rows))
    lines = [
        "# Framework compatibility",
        "",
        "Frameworks built on the official `openai` SDK, each driven through its own public API as its",
        "documentation shows, with `unillm.patch()` on. The app points the framework at OpenAI (here the",
        "simulated OpenAI of `unillm.testing`) and asks for `gpt-4o-mini`; in the **→ Anthropic** and",
        "**→ Gemini** columns unillm's `[routes]` send that model to the simulated Anthropic / Gemini",
        "instead, translating both ways, and the framework does not know. Each test checks the",
        "framework's own result (the parsed object, the tool its agent called, the streamed text) and",
        "the call log: one row per framework request, tokens and cost set, tags kept.",
        "",
        "Generated by `tests/frameworks` (`UNILLM_WRITE_COMPATIBILITY=docs/compatibility.md`), which",
        "`bash scripts/test` runs in its framework environments after the three openai majors: each",
        "framework's current release, with the openai SDK its own pins let pip choose. ✅ all tests of",
        "that cell passed, ❌ one failed, blank: not run.",
        "",
        "## openai SDK major × framework",
        "",
        "| framework | version | its openai pin | " + " | ".join(f"openai {m}.x" for m in MAJORS) + " |",
        "|---|---|---|" + "---|" * len(MAJORS),
    ]
    for framework in frameworks:
        mine = [r for r in rows if r["framework"] == framework]
        latest = mine[-1]
        spec = str(latest["openai_spec"])
        cells = []
        for major in MAJORS:
            run = [r for r in mine if _major(r["openai"]) == major]
            if run:
                outcomes = [c for r in run for f in r["features"].values() for c in f.values()]  # type: ignore[attr-defined]
                verdict = "❌" if "❌" in outcomes or "❌ (xfail)" in outcomes else "✅"
                cells.append(f"{verdict} {run[0]['openai']} (v{run[0]['version']})")
            elif _allows(spec, major):
                cells.append("allowed, not run")
            else:
                cells.append("excluded by its pin")
        pin = f"`openai{spec}`" if spec else "none"
        lines.append(f"| {framework} | {latest['version']} | {pin} | " + " | ".join(cells) + " |")
    lines += ["", "## Features per wire family", ""]
    lines += [
        "| framework | version | openai | feature | " + " | ".join(WIRE_TITLES[w] for w in WIRE_ORDER) + " |",
        "|---|---|---|---|" + "---|" * len(WIRE_ORDER),
    ]
    for row in rows:
        features: dict[str, dict[str, str]] = row["features"]  # type: ignore[assignment]
        for feature, by_wire in features.items():
            cells = [by_wire.get(w, "") for w in WIRE_ORDER]
            lines.append(
                f"| {row['framework']} | {row['version']} | {row['openai']} | {feature} | " + " | ".join(cells) + " |"
            )
    lines += [
        "",
        "Why some combinations are not run: the frameworks' pins decide. `openai-agents` and",
        "`pydantic-ai` need openai 3.x; `llama-index-llms-openai` needs openai < 3; `instructor` allows",
        "openai 2.x and 3.x but pins `jiter < 0.15`, which the openai 3.x releases that `pydantic-ai`",
        "needs cannot have, so it runs with llama-index on openai 2.x (`tests/frameworks/requirements*.txt`).",
        "",
        "<!-- compatibility-data",
        json.dumps(rows, indent=1, ensure_ascii=False),
        "-->",
    ]
    return "\n".join(lines) + "\n"
