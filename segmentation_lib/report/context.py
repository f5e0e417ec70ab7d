"""The run context: configuration and folders of one run, or of an interactive JupyterLab session.

>>> resolve_config_path("configs/default.yaml").name
'default.yaml'
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


from segmentation_lib.paths import REPO_DIR

WORK = "work"


# --------------------------------------------------------------------------- run context


@dataclass
class RunContext:
    """Configuration and folders of one run (or of an interactive JupyterLab session)."""

    cfg: dict[str, Any]
    run_dir: Path
    seed: int
    interactive: bool

    @property
    def work(self) -> Path:
        return self.run_dir / WORK


def resolve_config_path(config_path: str | Path) -> Path:
    """An absolute config path: as given, else relative to the cwd, its parent (notebooks/) or the repo root."""
    p = Path(config_path).expanduser()
    if p.is_absolute():
        return p
    for base in (Path.cwd(), Path.cwd().parent, REPO_DIR):
        if (base / p).is_file():
            return (base / p).resolve()
    return (REPO_DIR / p).resolve()


def open_run(config_path: str | Path = "configs/default.yaml", run_dir: str | Path = "", seed: int | None = None,
             as_of: str | None = None, overrides: Mapping[str, Any] | None = None) -> RunContext:
    """Load the configuration and prepare the run folder.

    ``run_dir=""`` (JupyterLab) uses the scratch folder ``reports/.lab-<config name>/``, which is never
    listed as a report. ``seed`` / ``as_of`` / ``overrides`` (nested dict) override the configuration.
    """
    from segmentation_lib.config import load_config

    path = resolve_config_path(config_path)
    extra: dict[str, Any] = dict(overrides or {})
    if seed is not None:
        extra.setdefault("run", {})["seed"] = int(seed)
    if as_of:
        extra.setdefault("run", {})["as_of"] = str(as_of)
    cfg = load_config(path, overrides=extra or None)
    interactive = not run_dir
    if interactive:
        out = Path((cfg.get("report") or {}).get("out_dir") or REPO_DIR / "reports")
        run_dir = out / f".lab-{path.stem}"
    rd = Path(run_dir).resolve()
    (rd / WORK).mkdir(parents=True, exist_ok=True)
    return RunContext(cfg=cfg, run_dir=rd, seed=int(cfg["run"]["seed"]), interactive=interactive)


