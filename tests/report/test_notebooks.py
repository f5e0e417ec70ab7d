"""The report notebooks are stored clean: no outputs, exactly one `parameters` cell of plain literals."""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

NB_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["01_exploration", "02_rfm", "03_clustering", "04_validation", "05_value", "06_since_last_run"]


@pytest.mark.parametrize("name", NAMES)
def test_notebook_clean_with_one_parameters_cell(name: str) -> None:
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"{name} has stored outputs"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{name}: {len(params)} parameters cells"
    tree = ast.parse(params[0].source)
    names = []
    for node in tree.body:  # plain literal assignments only (derived values belong in a later cell)
        assert isinstance(node, ast.Assign), ast.dump(node)
        ast.literal_eval(node.value)
        names.append(node.targets[0].id)
    assert {"config_path", "run_dir", "seed", "as_of", "run_id"} <= set(names)
    assert nb.metadata["kernelspec"]["name"] == "segmentation-kit"


@pytest.mark.parametrize("name", NAMES)
def test_papermill_sees_every_parameter(name: str) -> None:
    from papermill.translators import PythonTranslator

    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    seen = [p.name for p in PythonTranslator.inspect(cell)]
    assert seen[:5] == ["config_path", "run_dir", "seed", "as_of", "run_id"]
