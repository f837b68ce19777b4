"""Every example in README.md and docs/ runs in a test.

A fenced block is an example unless its language says it is shown for what it is
(frames on the wire, output, a layout) or its label says it is not ours to run
(```js synopsis: a summary of signatures; ```python flask-socketio: the code a guide
converts from). Each example must be taken from its document by some test, with
`tests.docs_apps.blocks(document, language, section=…)` or `commands(document, …)` and
constant arguments: this test reads the tests to find those calls, so an example that
no test takes, or a test that names a section that no longer exists, fails here."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from tests.docs_apps import ROOT

SHOWN = {"json", "text", ""}  # wire formats, output, layouts: read, not run
LABELS = {"synopsis", "flask-socketio"}
EXTRACTORS = {"blocks": None, "commands": "sh"}  # function -> its fixed language


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    language: str
    label: str
    section: str | None  # the nearest heading above, as blocks(section=…) finds it


def documents() -> list[str]:
    return ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]


def fenced_blocks(document: str) -> list[Block]:
    found: list[Block] = []
    section: str | None = None
    opening: tuple[int, str] | None = None
    for number, line in enumerate((ROOT / document).read_text().splitlines(), 1):
        fence = re.match(r"^```(.*)$", line)
        if opening is None and fence:
            opening = (number, fence[1].strip())
        elif opening is not None and line == "```":
            start, info = opening
            language, _, label = info.partition(" ")
            found.append(Block(document, start, language, label.strip(), section))
            opening = None
        elif opening is None and (heading := re.match(r"^#+ (.*)$", line)):
            section = heading[1]
    assert opening is None, f"{document}:{opening[0]}: a fence that never closes"
    return found


def extractions() -> set[tuple[str, str, str | None]]:
    """(document, language, section or None for all) of every constant call to an
    extractor in the tests."""
    taken: set[tuple[str, str, str | None]] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        module = ast.parse(path.read_text(), str(path))
        constants = {  # NAME = "text" at the top of the module
            target.id: node.value.value
            for node in module.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }

        for node in ast.walk(module):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id not in EXTRACTORS:
                continue
            values = [_value(a, constants) for a in node.args]
            section = next(
                (_value(k.value, constants) for k in node.keywords if k.arg == "section"), None
            )
            if not values or any(isinstance(v, ast.AST) for v in [*values, section]):
                continue  # the extractor's own plumbing, not a test's choice
            language = EXTRACTORS[node.func.id] or values[1]
            taken.add((str(values[0]), str(language), None if section is None else str(section)))
    return taken


def _value(node: ast.expr, constants: dict[str, object]) -> object:
    """A constant argument's value, or the node itself when it is not one."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id, node)
    return node


def unrun(blocks: list[Block], taken: set[tuple[str, str, str | None]]) -> list[Block]:
    return [
        b
        for b in blocks
        if b.language not in SHOWN
        and not b.label
        and (b.document, b.language, b.section) not in taken
        and (b.document, b.language, None) not in taken
    ]


def test_every_example_in_the_docs_is_taken_by_a_test() -> None:
    blocks = [b for document in documents() for b in fenced_blocks(document)]
    missing = [
        f"{b.document}:{b.line} ```{b.language} under {b.section!r}"
        for b in unrun(blocks, extractions())
    ]
    assert missing == [], "examples that no test runs:\n" + "\n".join(missing)


def test_every_label_is_one_we_know() -> None:
    labels = {(b.document, b.line, b.label) for d in documents() for b in fenced_blocks(d)}
    assert {(d, n, label) for d, n, label in labels if label and label not in LABELS} == set()


def test_the_sections_the_tests_name_exist() -> None:
    blocks = [b for document in documents() for b in fenced_blocks(document)]
    infos = {(b.document, f"{b.language} {b.label}".strip(), b.section) for b in blocks}
    present = infos | {(document, info, None) for document, info, _ in infos}
    assert {t for t in extractions() if t not in present} == set()


def test_the_scan_sees_what_it_must(tmp_path: Path) -> None:
    taken = extractions()
    assert ("docs/htmx.md", "html", "The page") in taken  # blocks(…, section=…)
    assert ("README.md", "sh", "Your own app") in taken  # commands(…, section=…)
    assert ("docs/pages.md", "python", None) in taken  # every python block of pages.md
    document = "docs/htmx.md"
    blocks = fenced_blocks(document)
    assert [b.section for b in blocks if b.language == "html"] == [
        "The record's fragment",
        "The page",
    ]
    assert unrun(blocks, taken - {(document, "html", "The page")}) == [
        b for b in blocks if b.section == "The page"
    ]
