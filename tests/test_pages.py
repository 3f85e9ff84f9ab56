"""The pages that quote benchmark results (the README, bench/README.md, docs/methods.md, docs/operations.md) are
their own source: their figures and blocks sit between markers, copied by ``scripts/render_docs.py`` from the
``"page"`` of the results file each marker names, which the benchmark that owns the data computed (its ``page()``,
``bench/common.py::write_page``). A figure changed in a page, in a results file or in a benchmark's computation
fails here, and so does a figure typed by hand outside the markers."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))

import render_docs  # noqa: E402

#: a figure: a decimal number (integers such as step counts are left out, as the test has always left them)
FIGURE = re.compile(r"\d+\.\d+")


def typed_figures(text: str) -> list[str]:
    """The figures of a page typed by hand: the decimals outside code (fenced or inline) and outside markers."""
    text = render_docs.BLOCK.sub("", text)
    text = render_docs.FIGURE.sub("", text)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return FIGURE.findall(text)


def generated_spans(text: str) -> list[tuple[int, int]]:
    """Where the generated text of a page is: each figure's text and each block's body."""
    return ([m.span("text") for m in render_docs.FIGURE.finditer(text)]
            + [m.span("body") for m in render_docs.BLOCK.finditer(text)])


def test_every_page_is_its_rendering_from_the_results():
    for page in render_docs.PAGES:
        text = (ROOT / page).read_text()
        assert text == render_docs.render(text), f"{page} is stale: run python scripts/render_docs.py"


def test_no_page_types_a_figure_outside_its_markers():
    for page in render_docs.PAGES:
        text = (ROOT / page).read_text()
        assert typed_figures(text) == [], page
        assert typed_figures(text + "\nThe student was 1.23x the teacher.\n") == ["1.23"]  # the check sees one


def test_each_generated_figure_of_every_page_changed_by_hand_is_caught():
    """Plant a change in every digit-ending figure inside the markers of every page (its last digit moved by one;
    tables, commands and prose), then render the planted page: the rendering comes from the results, not from the
    page, so it is the untouched page again, and differs from the planted one at every planted digit."""
    planted = caught = markers = 0
    for page in render_docs.PAGES:
        text = (ROOT / page).read_text()
        spans = generated_spans(text)
        markers += len(spans)
        digits = [a + m.end() - 1 for a, b in spans for m in FIGURE.finditer(text[a:b])]
        wrong = list(text)
        for at in digits:
            wrong[at] = str((int(text[at]) + 1) % 10)
        wrong = "".join(wrong)
        rendered = render_docs.render(wrong)
        assert rendered == text, f"the rendering of {page} followed the page edited by hand"
        planted += len(digits)
        caught += sum(wrong[at] != rendered[at] for at in digits)
    assert markers >= 100 and planted > markers // 2 and caught == planted, (markers, caught, planted)


def test_every_figure_follows_its_results_file(tmp_path):
    """Each marker reads its own entry: a copy of the results where every figure and block of every page says
    something else renders every marker of every page differently, and nothing outside the markers."""
    for page in render_docs.PAGES:
        text = (ROOT / page).read_text()
        for file in {m["file"] for m in [*render_docs.FIGURE.finditer(text), *render_docs.BLOCK.finditer(text)]}:
            path = tmp_path / f"{file}.json"
            if path.is_file():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            data = json.loads((render_docs.RESULTS / f"{file}.json").read_text())
            for kind in ("figures", "blocks"):
                data["page"][kind] = {name: value + " (planted)" for name, value in data["page"].get(kind, {}).items()}
            path.write_text(json.dumps(data))
        rendered = render_docs.render(text, tmp_path)
        spans = generated_spans(rendered)
        assert len(spans) == len(generated_spans(text))
        assert all("(planted)" in rendered[a:b] for a, b in spans), page
        assert rendered.count("(planted)") == len(spans)


def test_the_renderer_is_idempotent_and_keeps_what_is_written_outside_the_markers():
    text = (ROOT / "bench" / "README.md").read_text()
    once = render_docs.render(text)
    assert render_docs.render(once) == once
    edited = text.replace("# Benchmarks\n", "# Benchmarks\n\nA sentence a maintainer added by hand.\n", 1)
    marker = next(render_docs.FIGURE.finditer(edited))
    edited = edited[:marker.start()] + "about " + edited[marker.start():]  # next to a figure, too
    rendered = render_docs.render(edited)
    assert "A sentence a maintainer added by hand." in rendered and "about <!-- fig " in rendered
    assert rendered == edited


def test_an_unknown_marker_is_one_line_naming_the_file_or_figure():
    with pytest.raises(SystemExit, match=r"demo/demo.json has no figure 'no_such_figure'"):
        render_docs.render("<!-- fig demo/demo:no_such_figure --><!-- /fig -->")
    with pytest.raises(SystemExit, match=r"a marker names no_such_file, but .* does not exist"):
        render_docs.render("<!-- fig no_such_file:x --><!-- /fig -->")


#: bench/README.md's list of the benchmarks whose scripts left bench/ (their results files stay)
RETIRED_SECTION = (ROOT / "bench" / "README.md").read_text().partition("## Retired benchmarks")[2]


def results_with_pages() -> list[Path]:
    return sorted(path for path in render_docs.RESULTS.rglob("*.json") if '"page": {' in path.read_text())


@pytest.mark.parametrize("path", results_with_pages(), ids=lambda p: str(p.relative_to(render_docs.RESULTS)))
def test_each_results_page_is_what_its_benchmark_computes_from_the_results_today(path):
    """A figure is computed once, by the benchmark that owns the data, when it writes its results; a change to that
    computation (or to a results file it reads) without writing the results again fails here."""
    stored = json.loads(path.read_text())["page"]
    script = Path(stored.pop("by"))
    if not (ROOT / script).is_file():  # a retired benchmark: its results stay as they are, if bench/README says so
        assert re.search(rf"^- `{script.name}`, retired at [0-9a-f]{{7,40}}", RETIRED_SECTION, re.MULTILINE), \
            f"{script} is gone: name it under '## Retired benchmarks' in bench/README.md, with the last commit that has it"
        return
    module = importlib.import_module(script.stem)
    assert stored == module.page(render_docs.RESULTS), f"run the benchmark's report, or: python -c \"import sys; " \
        f"sys.path.insert(0, 'bench'); import common, {module.__name__} as m; " \
        f"common.write_page('bench/results', '{path.relative_to(render_docs.RESULTS).with_suffix('')}', m.page)\""


def test_a_block_follows_the_runs_it_reads(tmp_path):
    """A benchmark's table reads its run files: another score in one run's file changes that run's row only."""
    import two_stage

    copy = tmp_path / "results"
    shutil.copytree(render_docs.RESULTS / "two_stage" / "general", copy / "two_stage" / "general")
    before = two_stage.two_stage_levers_table(copy)
    record = copy / "two_stage" / "general" / "384x2@uniform-c2000-pruned" / "seed0.json"
    record.write_text(record.read_text().replace('"score": 1.005', '"score": 1.105', 1))
    after = two_stage.two_stage_levers_table(copy)
    # the row of that run, and only it, changes (a cell is one seed's value or the mean and std of 3)
    changed = [(b, a) for b, a in zip(before.splitlines(), after.splitlines()) if b != a]
    assert len(changed) == 1 and changed[0][0].startswith("| pruned start, 2000-batch cache")


def test_a_figure_in_the_prose_follows_its_results_file(tmp_path):
    """A prose figure is computed from its file by its benchmark: another demo result, another figure."""
    import demo

    (tmp_path / "demo").mkdir()
    result = json.loads((render_docs.RESULTS / "demo" / "demo.json").read_text())
    before = demo.page(render_docs.RESULTS)["figures"]["student_wql"]
    result["m3_monthly"]["student"]["WQL"] = 0.2345
    (tmp_path / "demo" / "demo.json").write_text(json.dumps(result))
    assert demo.page(tmp_path)["figures"]["student_wql"] == "0.2345" != before


def test_every_figure_and_block_a_results_file_holds_for_the_pages_is_quoted_by_one():
    """A benchmark computes only what a page quotes: a figure no page reads is one to drop from its ``page()``."""
    quoted = set()
    for page in render_docs.PAGES:
        text = (ROOT / page).read_text()
        quoted |= {(m["file"], m["name"]) for m in [*render_docs.FIGURE.finditer(text), *render_docs.BLOCK.finditer(text)]}
    held = {(str(path.relative_to(render_docs.RESULTS).with_suffix("")), name)
            for path in results_with_pages()
            for kind in ("figures", "blocks") for name in json.loads(path.read_text())["page"].get(kind, {})}
    assert sorted(held - quoted) == []
