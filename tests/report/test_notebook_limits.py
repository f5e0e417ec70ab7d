"""The report notebooks are display-only: one setup call, then one short library call per cell, stored clean."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

NB_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
SETUP = re.compile(r'^page = notebook_setup\("(exploration|rfm|clustering|validation|value|since_last_run)", config_path, run_dir, seed=seed, '
                   r'as_of=as_of(, \w+=\w+)*\)$')
#: the experiment page (report/experiment.py) has its own setup call of the same shape, with the exposures file
EXPERIMENT_SETUP = re.compile(r'^page = experiment_setup\(config_path, run_dir, exposures, seed=seed, as_of=as_of\)$')
IMPORTS = {"experiment": "from segmentation_lib.report.experiment import experiment_setup"}
DEFAULT_IMPORT = "from segmentation_lib.report.pages import notebook_setup"
MAX_LINES, MAX_CELL_LINES = 40, 5


def _code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _lines(cell) -> list[str]:
    return [line for line in cell.source.splitlines() if line.strip()]


def test_all_five_notebooks_are_checked() -> None:
    assert [p.stem for p in NOTEBOOKS] == ["01_exploration", "02_rfm", "03_clustering", "04_validation", "05_value",
                                           "06_since_last_run", "experiment"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_size_limits(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    sizes = [len(_lines(c)) for c in _code(nb)]
    assert sum(sizes) <= MAX_LINES, (path.stem, sum(sizes))  # every code line, the parameters cell included
    # the parameters cell holds only literal assignments and their comments (papermill's contract; checked in
    # test_one_parameters_cell_then_the_setup_call), so the per-cell limit applies to the other cells
    logic = [len(_lines(c)) for c in _code(nb) if "parameters" not in c.metadata.get("tags", [])]
    assert max(logic) <= MAX_CELL_LINES, (path.stem, logic)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs_and_with_the_kernel(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert all(not c.outputs and c.execution_count is None for c in _code(nb)), path.stem
    assert nb.metadata["kernelspec"] == {"display_name": "Python (segmentation-kit)", "language": "python",
                                         "name": "segmentation-kit"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_then_the_setup_call(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = _code(nb)
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, (path.stem, tagged)
    for node in ast.parse(code[tagged[0]].source).body:  # literals only: no logic hides in the parameters
        assert isinstance(node, ast.Assign), ast.dump(node)
        ast.literal_eval(node.value)
    setup = _lines(code[tagged[0] + 1])
    # the setup cell: the one import (notebook_setup), then the one setup call
    assert setup[0] == IMPORTS.get(path.stem, DEFAULT_IMPORT) and len(setup) == 2, setup
    assert (EXPERIMENT_SETUP if path.stem == "experiment" else SETUP).match(setup[1]), setup[1]
    assert all("notebook_setup" not in line and "experiment_setup" not in line
               for c in code[tagged[0] + 2:] for line in _lines(c))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_imports_and_one_page_call_per_cell(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = _code(nb)
    params = next(i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
    imports = [(i, line) for i, cell in enumerate(code) for line in _lines(cell)
               if re.match(r"\s*(import|from)\s+\S+", line) or "__import__" in line]
    assert imports == [(params + 1, IMPORTS.get(path.stem, DEFAULT_IMPORT))], (path.stem, imports)
    for cell in code[params + 2:]:
        tree = ast.parse(cell.source)
        assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr), (path.stem, cell.source)
        call = tree.body[0].value
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute), cell.source
        assert isinstance(call.func.value, ast.Name) and call.func.value.id == "page", cell.source
    assert _lines(code[-1]) == ["page.run_notes()"], path.stem  # the notes on this run close every page
