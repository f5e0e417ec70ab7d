"""Open a run's index.html and one report in Debian's headless chromium; screenshots, no console errors."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest

from segmentation_lib.report import pipeline

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]

if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    if os.environ.get("CI"):
        pytest.fail("chromium is required in CI: install it with `apt-get install -y chromium` (make test does).",
                    pytrace=False)
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium); `make test` installs it with apt-get.",
                allow_module_level=True)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "segmentation-kit", "display_name": "Python", "language": "python"}
    params = nbformat.v4.new_code_cell('config_path = ""\nrun_dir = ""\nseed = 0\nrun_id = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Browser check"), params, nbformat.v4.new_code_cell(
        "import json, pathlib\nimport matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(figsize=(5, 3)); ax.bar(['A', 'B'], [3, 5]); ax.set_title('Customers by segment')\n"
        "pathlib.Path(run_dir, 'metrics.json').write_text(json.dumps({'customers': 8, 'n_clusters': 2, 'silhouette': 0.61}))")]
    (root / "nbs").mkdir()
    nbformat.write(nb, root / "nbs" / "01_exploration.ipynb")
    (root / "cfg.yaml").write_text("run: {name: browser}\n", encoding="utf-8")
    index = pipeline.run_pipeline(root / "cfg.yaml", out_dir=root / "reports", progress=False,
                                  notebooks=["01_exploration"], notebooks_dir=root / "nbs")
    return index.parent


@pytest.mark.parametrize("page", ["index.html", "01_exploration.html", "../index.html"])
def test_page_renders_without_console_errors(run_dir: Path, page: str) -> None:
    from playwright.sync_api import sync_playwright

    target = (run_dir / page).resolve()
    shot = run_dir / f"screenshot-{page.replace('../', 'reports-').replace('.html', '')}.png"
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                                    args=ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1200, "height": 900})
            pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.goto(target.as_uri())
            pg.wait_for_load_state("load")
            pg.screenshot(path=str(shot), full_page=True)
            body = pg.inner_text("body")
            imgs = pg.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        finally:
            browser.close()
    assert errors == []
    assert shot.stat().st_size > 5_000
    if page == "index.html":
        assert "Customer segmentation report" in body and "behavioural segments" in body.lower() and "0.61" in body
    elif page == "01_exploration.html":
        assert "Browser check" in body and imgs and all(w > 100 for w in imgs)
        assert "import json" not in body
    else:
        assert run_dir.name in body
