"""The generated figure blocks of the README, bench/README.md and docs/operations.md (``<!-- block:NAME -->``) equal what ``bench/doc_blocks.py`` renders from
``bench/results``: no figure in them is typed by hand, and a figure changed in the page or in a results file fails
here (``python scripts/render_docs.py`` rewrites them)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import doc_blocks  # noqa: E402

PAGES = [ROOT / page for page in doc_blocks.PAGES]
FIGURE = re.compile(r"\d+\.\d+")


def test_every_block_of_every_page_is_its_rendering_from_the_results():
    for page in PAGES:
        text = page.read_text()
        assert doc_blocks.blocks_in(text), f"{page.name} has no generated block"
        assert doc_blocks.render_blocks(text) == text, f"{page.name} is stale: run python scripts/render_docs.py"


def test_each_figure_of_a_block_changed_by_hand_is_caught():
    """Plant a change in every figure of every block, one at a time (the last digit moved by one; 183 figures in the
    README, bench/README.md and docs/operations.md today): each fails."""
    planted = caught = 0
    for page in PAGES:
        text = page.read_text()
        for match in doc_blocks._BLOCK.finditer(text):
            for figure in FIGURE.finditer(match["body"]):
                start = match.start("body") + figure.end() - 1
                wrong = text[:start] + str((int(text[start]) + 1) % 10) + text[start + 1:]
                planted += 1
                caught += doc_blocks.render_blocks(wrong) != wrong
    assert planted >= 183 and caught == planted, (caught, planted)


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
    assert "| 1.105" in after and "1.105" not in before
