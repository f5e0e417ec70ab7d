"""The project's contract files agree with each other."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: pip requirement name -> conda-forge package name, where they differ
CONDA_NAMES = {"pandera[polars]": "pandera-polars"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ;]", req, maxsplit=1)[0].strip().lower()


def _pyproject_deps() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    out = {}
    for req in data["project"]["dependencies"]:
        name = _name(req)
        out[CONDA_NAMES.get(name, name)] = req[len(name):].strip()
    return out


def _conda_deps() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and _name(dep) not in {"python", "pip"}:
            out[_name(dep)] = dep[len(_name(dep)):].strip()
    return out


def test_environment_yml_lists_the_same_runtime_dependencies_as_pyproject():
    py, conda = _pyproject_deps(), _conda_deps()
    assert set(py) == set(conda), f"only in pyproject: {set(py) - set(conda)}; only in environment.yml: {set(conda) - set(py)}"
    assert py == conda, "lower bounds differ between pyproject.toml and environment.yml"


def test_environment_yml_uses_conda_forge_and_installs_the_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    pip = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    assert "-e ." in pip


def test_required_dependencies_have_the_floors_the_design_needs():
    py = _pyproject_deps()
    assert py["scikit-learn"] == ">=1.8"
    assert py["hdbscan"] == ">=0.8.41"
    for name in ("polars", "seaborn", "papermill", "jupyterlab"):
        assert name in py


def test_top_level_layout_is_as_designed():
    for name in ("notebooks", "segmentation_lib", "data", "reports", "tests", "configs", "benchmarks"):
        assert (ROOT / name).is_dir(), name
    for name in ("environment.yml", "README.md", "pyproject.toml", "Makefile", ".ci/run"):
        assert (ROOT / name).is_file(), name


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make report" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\s*$", ci, re.M)


def test_default_config_documents_every_default_key():
    """configs/default.yaml and the packaged defaults have the same keys (the packaged file is the reference)."""

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + str(k))
            if isinstance(v, dict) and prefix + str(k) not in {"data.columns", "data.customers.columns", "clustering.names"}:
                out |= keys(v, prefix + str(k) + ".")
        return out

    shipped = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    defaults = yaml.safe_load((ROOT / "segmentation_lib" / "default_config.yaml").read_text())
    assert keys(shipped) == keys(defaults)


def test_every_public_name_resolves():
    import segmentation_lib as seg

    missing = [name for name in seg.__all__ if not hasattr(seg, name)]
    assert missing == []


def test_configuration_doc_shows_every_default_key():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    defaults = (ROOT / "segmentation_lib" / "default_config.yaml").read_text()
    assert defaults.strip() in doc, "docs/configuration.md is out of date: regenerate its Defaults block"


def test_a_regular_wheel_holds_everything_a_run_needs(tmp_path):
    """A non-editable install must carry the defaults, maps, templates and the report notebooks."""
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(root)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    needed = {"segmentation_lib/default_config.yaml", "segmentation_lib/segment/maps/default.yaml",
              "segmentation_lib/report/templates/run_index.html.j2", "segmentation_lib/report/templates/nbreport/index.html.j2",
              "segmentation_lib/report/templates/nbreport/conf.json", "segmentation_lib/features/cohorts.py"}
    needed |= {f"segmentation_lib/notebooks/{p.name}" for p in (root / "notebooks").glob("*.ipynb")}
    assert len(needed) >= 10 and needed <= names, sorted(needed - names)
