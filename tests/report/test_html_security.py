"""Hostile names (segment, rule, run, file names) render as inert text in every generated page, in Chromium.

One tiny pipeline run (one notebook that shows hostile names through the kit's own Markdown tables and
sentences, the run index and the reports index) is opened in Debian's headless chromium: no script
runs, no element from a name exists, the names show literally, and every page carries the kit's
Content-Security-Policy. Without a browser the same pages are checked for live tags.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from segmentation_lib.describe.format import inert_markdown, md_literal, md_table
from segmentation_lib.report import pipeline
from segmentation_lib.report.html import CONTENT_SECURITY_POLICY
from segmentation_lib.report.pages import MarkdownText

SCRIPT = "<script>document.title='pwned'</script>"
IMG = "<img src=x onerror=\"document.title='pwned'\">"
SVG = "<svg onload=\"document.title='pwned'\"></svg>"
LINK = "[click](javascript:document.title='pwned')"
HOSTILE = [f"Champions {SCRIPT}", f"Hibernating {IMG}", f"Whales {SVG}", f"Loyal {LINK}"]
#: Markdown punctuation shows as typed in table cells (in sentences a name's * or _ may still format)
PUNCTUATION = "*VIP*_x_ | [a](b) \\"
CHROMIUM = "/usr/bin/chromium"


def hostile_notebook(path: Path) -> None:
    """A report notebook that shows the hostile names the way the report pages do."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "segmentation-kit", "display_name": "Python", "language": "python"}
    params = nbformat.v4.new_code_cell('config_path = ""\nrun_dir = ""\nseed = 0\nrun_id = ""')
    params.metadata["tags"] = ["parameters"]
    setup = (
        "import json, pathlib\nimport polars as pl\n"
        "from segmentation_lib.describe.format import md_table\n"
        "from segmentation_lib.describe.tables import describe_summary, segment_summary\n"
        "from segmentation_lib.report.pages import MarkdownText\n"
        f"names = json.loads({json.dumps(json.dumps(HOSTILE))})\n"
        "t = pl.DataFrame({'segment': [n for i, n in enumerate(names) for _ in range(i + 1)],\n"
        "                  'total_spend': [float(10 ** i) for i, n in enumerate(names) for _ in range(i + 1)]})\n"
        "summary = segment_summary(t, 'segment')\n"
        "_ = pathlib.Path(run_dir, 'segments.json').write_text(json.dumps(\n"
        "    [{'id': i, 'name': n, 'customers': i + 1, 'share': 0.25, 'revenue_share': 0.25, 'action': n}\n"
        "     for i, n in enumerate(names)]))")
    nb.cells = [nbformat.v4.new_markdown_cell("# Hostile names"), params, nbformat.v4.new_code_cell(setup),
                nbformat.v4.new_code_cell("MarkdownText(md_table(summary))"),
                nbformat.v4.new_code_cell(f"MarkdownText(md_table(pl.DataFrame({{'typed': [{PUNCTUATION!r}]}})))"),
                nbformat.v4.new_code_cell("MarkdownText(describe_summary(summary, 'segment') + ' Rule `' + names[0] + '`')")]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    (root / "nbs").mkdir()
    hostile_notebook(root / "nbs" / "01_exploration.ipynb")
    data = root / f"log {IMG.replace('/', '')}.csv"  # a hostile file name, listed on the reports index
    data.write_text("customer_id,timestamp,amount\nx,2024-01-02,10\n", encoding="utf-8")
    (root / "cfg.yaml").write_text(json.dumps({"run": {"name": f"run {SCRIPT}"}, "data": {"path": data.name}}),
                                   encoding="utf-8")
    index = pipeline.run_pipeline(root / "cfg.yaml", out_dir=root / "reports", progress=False,
                                  notebooks=["01_exploration"], notebooks_dir=root / "nbs")
    return index.parent


PAGES = ["01_exploration.html", "index.html", "../index.html"]


@pytest.mark.parametrize("page", PAGES)
def test_pages_have_no_live_element_from_a_name_and_carry_the_policy(hostile_run: Path, page: str) -> None:
    import html
    import re

    text = (hostile_run / page).read_text(encoding="utf-8")
    metas = [html.unescape(m.group(0)) for m in re.finditer(r"<meta [^>]*>", text) if "Content-Security-Policy" in m.group(0)]
    assert len(metas) == 1 and f'content="{CONTENT_SECURITY_POLICY}"' in metas[0]
    assert 'http-equiv="Content-Security-Policy"' in metas[0]
    assert text.index("Content-Security-Policy") < text.index("<style")  # in force before any content
    for live in ("<script", "<img src=x", "<svg", "href=\"javascript:"):
        assert live not in text, (page, live)


def test_hostile_names_are_inert_and_literal_in_chromium(hostile_run: Path) -> None:
    browser_path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not browser_path:
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium); `make test` installs it.")
    from playwright.sync_api import sync_playwright

    from tests.report.test_browser import ARGS

    seen = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=ARGS)
        try:
            for page in PAGES:
                pg = browser.new_page()
                pg.goto((hostile_run / page).resolve().as_uri())
                pg.wait_for_load_state("load")
                pg.wait_for_timeout(200)  # an onerror / onload handler would have run by now
                for link in pg.query_selector_all("a"):  # a javascript: link from a name would set the title
                    href = link.get_attribute("href") or ""
                    assert not href.lower().startswith("javascript"), (page, href)
                seen[page] = (pg.title(), pg.inner_text("body"),
                              pg.eval_on_selector_all("script, svg, img[src='x']", "els => els.length"))
                pg.close()
        finally:
            browser.close()
    for page, (title, body, elements) in seen.items():
        assert "pwned" not in title and elements == 0, page
    notebook = seen["01_exploration.html"][1]
    for name in HOSTILE:  # the names exactly as typed, Markdown punctuation included
        assert name in notebook
    assert f"Rule {HOSTILE[0]}" in notebook  # inside a code span too
    assert PUNCTUATION in notebook
    run_index = seen["index.html"][1]
    assert f"run {SCRIPT}" in run_index and HOSTILE[1] in run_index
    assert f"run {SCRIPT}" in seen["../index.html"][1] and IMG.replace("/", "") in seen["../index.html"][1]


def test_markdown_of_a_hostile_name_has_no_html() -> None:
    import polars as pl

    table = md_table(pl.DataFrame({"segment": [*HOSTILE, PUNCTUATION], "n": [1, 2, 3, 4, 5]}))
    shown = MarkdownText(table)._repr_markdown_()
    assert "<" not in shown.replace("`", "") and "&lt;script>" in shown
    assert md_literal("a|b") == "a\\|b" and md_literal(PUNCTUATION) in table
    assert md_literal(PUNCTUATION) == "\\*VIP\\*\\_x\\_ \\| \\[a\\](b) \\\\"
    assert inert_markdown("`<b>` <b>") == "`<b>` &lt;b>"  # code spans are literal already
    assert inert_markdown("\\`<b>\\`") == "\\`&lt;b>\\`"  # an escaped backtick opens no code span
