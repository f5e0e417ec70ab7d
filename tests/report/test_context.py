"""segmentation_lib.report.context: the configuration path of a notebook run."""
from __future__ import annotations

from pathlib import Path

from segmentation_lib.report import context, pipeline


def test_resolve_config_path_from_notebooks_dir(monkeypatch) -> None:
    root = Path(pipeline.__file__).resolve().parents[2]
    monkeypatch.chdir(root / "notebooks")
    assert context.resolve_config_path("configs/default.yaml") == root / "configs" / "default.yaml"
