"""The pages that quote benchmark figures (the README, bench/README.md, docs/methods.md, docs/operations.md) are
written from their templates in docs/templates/ by ``scripts/render_docs.py``: their tables (``bench/doc_blocks.py``)
and the figures in their prose (``bench/doc_figures.py``) come from ``bench/results`` by name. Each page must equal its rendering,
and no template may type a figure, so a figure changed in a page, in a template or in a results file fails here."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import doc_blocks  # noqa: E402
import doc_figures  # noqa: E402

#: a figure: a decimal number (integers such as step counts are left out, as the test has always left them)
FIGURE = re.compile(r"\d+\.\d+")


def typed_figures(text: str) -> list[str]:
    """The figures of a template typed by hand: the decimals outside code (fenced or inline), outside the blocks'
    bodies (rendered) and outside ``{{section.name}}`` placeholders."""
    text = re.sub(r"^[ \t]*<!-- block:([\w-]+) -->\n.*?<!-- /block:\1 -->", "", text, flags=re.S | re.M)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = doc_figures.PLACEHOLDER.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)
    return FIGURE.findall(text)


def page_figures(text: str) -> list[re.Match]:
    """Every figure of a page outside code, where a reader meets it."""
    code = [m.span() for m in re.finditer(r"```.*?```|`[^`\n]*`", text, flags=re.S)]
    return [m for m in FIGURE.finditer(text) if not any(a <= m.start() < b for a, b in code)]


def test_every_page_is_its_rendering_from_its_template_and_the_results():
    for page in doc_blocks.PAGES:
        assert (ROOT / page).read_text() == doc_blocks.render_page(page), \
            f"{page} is stale or edited by hand: edit docs/templates/, then run python scripts/render_docs.py"


def test_no_template_types_a_figure_by_hand():
    for template in doc_blocks.TEMPLATES.values():
        text = (ROOT / "docs" / "templates" / template).read_text()
        assert typed_figures(text) == [], template
        assert typed_figures(text + "\nThe student was 1.23x the teacher.\n") == ["1.23"]  # the check sees one


def test_each_figure_of_every_page_changed_by_hand_is_caught(tmp_path, monkeypatch):
    """Plant a change in every figure of every page (its last digit moved by one; 436 figures today, tables and
    prose) in the page on disk, in a copy of the repository's pages and templates, then render the page afresh
    there: the rendering must not follow the page (it is the rendering of the untouched repository), so the page on
    disk differs from it at every planted figure. Comparing the edited text with a rendering made before the edit
    could not fail: a rendering that read the page back would have passed."""
    import shutil

    shutil.copytree(ROOT / "docs" / "templates", tmp_path / "docs" / "templates")
    planted = caught = 0
    digits = {}  # page -> where its planted digits are
    for page in doc_blocks.PAGES:
        text = (ROOT / page).read_text()
        assert text == doc_blocks.render_page(page), f"{page} is stale: run python scripts/render_docs.py"
        digits[page] = [figure.end() - 1 for figure in page_figures(text)]
        wrong = list(text)
        for at in digits[page]:
            wrong[at] = str((int(text[at]) + 1) % 10)
        planted += len(digits[page])
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text("".join(wrong))
    monkeypatch.setattr(doc_blocks, "ROOT", tmp_path)
    for page in doc_blocks.PAGES:
        on_disk, rendered = (tmp_path / page).read_text(), doc_blocks.render_page(page)
        assert rendered == (ROOT / page).read_text(), f"the rendering of {page} followed the page edited by hand"
        assert on_disk != rendered  # the check of test_every_page_is_its_rendering_... fails on the edited page
        # every planted figure, one by one: the page on disk and its rendering differ at its digit
        caught += sum(on_disk[at] != rendered[at] for at in digits[page])
    assert planted >= 436 and caught == planted, (caught, planted)


def test_a_block_follows_its_results_file(tmp_path, monkeypatch):
    """The rendering reads the results by name: another score in the run's file gives another table."""
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(doc_blocks.RESULTS / "two_stage" / "general", copy / "two_stage" / "general")
    before = doc_blocks.two_stage_levers()
    record = copy / "two_stage" / "general" / "384x2@uniform-c2000-pruned" / "seed0.json"
    record.write_text(record.read_text().replace('"score": 1.005', '"score": 1.105', 1))
    monkeypatch.setattr(doc_blocks, "RESULTS", copy)
    after = doc_blocks.two_stage_levers()
    # the row of that run, and only it, changes (a cell is one seed's value or the mean and std of 3)
    changed = [(b, a) for b, a in zip(before.splitlines(), after.splitlines()) if b != a]
    assert len(changed) == 1 and changed[0][0].startswith("| pruned start, 2000-batch cache")


def test_a_figure_in_the_prose_follows_its_results_file(tmp_path, monkeypatch):
    """A prose figure is computed from its file when the page is written: another demo result, another sentence."""
    import json

    (tmp_path / "demo").mkdir()
    demo = json.loads((doc_figures.RESULTS / "demo" / "demo.json").read_text())
    before = doc_figures.render_figures("student {{demo.student_wql}}")
    demo["m3_monthly"]["student"]["WQL"] = 0.2345
    (tmp_path / "demo" / "demo.json").write_text(json.dumps(demo))
    monkeypatch.setattr(doc_figures, "RESULTS", tmp_path)
    assert doc_figures.render_figures("student {{demo.student_wql}}") == "student 0.2345" != before
    try:
        doc_figures.render_figures("{{demo.no_such_figure}}")
    except KeyError as exc:
        assert "demo.no_such_figure" in str(exc)
    else:
        raise AssertionError("an unknown figure name was rendered")
