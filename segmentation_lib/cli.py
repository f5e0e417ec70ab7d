"""The `segment` command line: demo data, data checks, report runs and scoring for scheduled use.

    segment demo-data --out data/demo
    segment check-data --config configs/default.yaml
    segment run --config configs/default.yaml
    segment score --model reports/<run>/model.joblib --data new_log.parquet --out scores.parquet

Every command exits 0 on success, 2 with a one-paragraph message on bad input or configuration,
and 1 when a report run fails (the failed notebook is kept in a `failed-...` folder).
"""
from __future__ import annotations

import errno
import functools
import sys
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console

from segmentation_lib.errors import ConfigError, SegmentationError

app = typer.Typer(
    name="segment",
    help="Customer segmentation kit: turn a transaction log into segments a business can act on.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

#: metavar for plain on/off flags (typer with click >= 8.3 otherwise shows ``<bool>`` after them)
FLAG = " "

_OS_FIXES = {
    errno.EEXIST: ("a file is in the way where a folder is expected",
                   "choose an output path whose folders are folders (not files), or move that file away"),
    errno.ENOTDIR: ("a file is in the way where a folder is expected",
                    "choose an output path whose folders are folders (not files), or move that file away"),
    errno.ENOENT: ("the folder does not exist and cannot be created there",
                   "choose a path under a writable folder that exists (e.g. one under your home or project)"),
    errno.EACCES: ("permission denied", "choose a folder you can write to, or fix its permissions"),
    errno.EPERM: ("the operation is not permitted", "choose a folder you can write to, or fix its permissions"),
    errno.EROFS: ("the file system is read-only", "choose a folder on a writable disk"),
    errno.ENOSPC: ("the disk is full", "free some space or choose a folder on another disk"),
    errno.EISDIR: ("it is a folder where a file is expected", "pass a file path, not a folder"),
}


def os_error_message(exc: OSError) -> str:
    """One paragraph for a file-system error: which path, what went wrong, the fix.

    >>> os_error_message(FileExistsError(17, "File exists", "/tmp/a.csv"))
    "Cannot use the path '/tmp/a.csv': a file is in the way where a folder is expected (File exists). Fix: choose an output path whose folders are folders (not files), or move that file away."
    """
    path = exc.filename if exc.filename is not None else "(unknown path)"
    what, fix = _OS_FIXES.get(exc.errno, ("the operating system refused the operation",
                                          "check the path, its permissions and the free disk space"))
    if exc.errno in (errno.EEXIST, errno.ENOTDIR) and exc.filename is not None:
        blocker = next((a for a in [Path(path), *Path(path).parents] if a.is_file()), None)
        if blocker is not None and str(blocker) != str(path):
            what = f"'{blocker}' is a file where a folder is expected"
    detail = exc.strerror or type(exc).__name__
    return f"Cannot use the path '{path}': {what} ({detail}). Fix: {fix}."


def friendly_errors(fn: Callable) -> Callable:
    """Turn a SegmentationError into its one-paragraph message and a non-zero exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SegmentationError as exc:
            console.print(f"[bold red]Error:[/bold red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=getattr(exc, "exit_code", 2)) from None
        except OSError as exc:
            console.print(f"[bold red]Error:[/bold red] {os_error_message(exc)}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            console.print("[yellow]Interrupted; nothing half-written was kept.[/yellow]")
            raise typer.Exit(code=130) from None

    return wrapper


@app.command("demo-data")
@friendly_errors
def demo_data(
    out: Path = typer.Option(Path("data/demo"), "--out", help="Folder to write transactions, customers and truth Parquet files into."),
    n_customers: int = typer.Option(20_000, "--n-customers", min=10, help="Number of customers to generate."),
    seed: int = typer.Option(42, "--seed", help="Random seed; the same seed gives identical files."),
    fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
) -> None:
    """Generate a realistic demo transaction log with planted customer archetypes (the known truth)."""
    from segmentation_lib.data.demo import write_demo_data

    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format {fmt!r} is not supported. Fix: use --format parquet or --format csv.")

    with console.status(f"Generating {n_customers:,} customers into {out} ..."):
        paths = write_demo_data(out, n_customers=n_customers, seed=seed, fmt=fmt)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


@app.command("check-data")
@friendly_errors
def check_data(
    config: Path = typer.Option(Path("configs/default.yaml"), "--config", "-c", help="Run configuration YAML (data section: path, columns, date_format)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Override data.path from the configuration."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Column preset, e.g. online_retail."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Override run.as_of (YYYY-MM-DD)."),
    as_json: bool = typer.Option(False, "--json", metavar=FLAG, help="Print the report as JSON (for scheduled checks)."),
    fail_on_exclusions: Optional[float] = typer.Option(
        None, "--max-excluded-share", min=0.0, max=1.0,
        help="Exit 1 when more than this share of rows is excluded (e.g. 0.05), for alerting."),
) -> None:
    """Read the transaction log as configured, apply the data-quality rules and print the report."""
    from segmentation_lib.config import load_config

    overrides: dict = {}
    if data is not None:
        overrides.setdefault("data", {})["path"] = str(data.resolve())
    if preset is not None:
        overrides.setdefault("data", {})["preset"] = preset
    if as_of is not None:
        overrides.setdefault("run", {})["as_of"] = as_of
    cfg = load_config(config, overrides=overrides)
    from segmentation_lib.data.quality import load_transactions

    with console.status(f"Checking {cfg['data']['path']} ..."):
        _, report = load_transactions(cfg)
    if as_json:
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        typer.echo(str(report))
    info = report.to_dict()
    excluded = (info.get("rows_excluded") or 0) / max(info.get("rows_in") or 1, 1)
    if fail_on_exclusions is not None and excluded > fail_on_exclusions:
        console.print(f"[bold red]Data check failed:[/bold red] {excluded:.1%} of the rows of {cfg['data']['path']} were "
                      f"excluded, more than the allowed {fail_on_exclusions:.1%}. See the rules above for what was excluded.")
        raise typer.Exit(code=1)


@app.command("run")
@friendly_errors
def run(
    config: Path = typer.Option(Path("configs/default.yaml"), "--config", "-c", help="Run configuration YAML."),
    out: Optional[Path] = typer.Option(None, "--out", help="Reports folder (default: report.out_dir of the configuration)."),
    demo: bool = typer.Option(False, "--demo", metavar=FLAG, help="Generate the demo data first if data.path does not exist."),
    engine: Optional[str] = typer.Option(None, "--engine", help="polars | spark: overrides engine.kind (docs/spark.md)."),
) -> None:
    """Execute the four report notebooks with papermill into a new folder under reports/ and print its index.html."""
    from segmentation_lib.report.pipeline import run_pipeline

    if engine:
        import os

        from segmentation_lib.engine.spark_session import ENGINE_ENV, engine_settings

        os.environ[ENGINE_ENV] = engine  # the notebooks' kernels inherit it
        engine_settings({})  # a clear ConfigError for an unknown engine, before any notebook runs
    if demo:
        _ensure_demo_data(config)
    index = run_pipeline(config, out_dir=out)
    typer.echo(str(index))


def _ensure_demo_data(config: Path) -> None:
    from segmentation_lib.config import load_config
    from segmentation_lib.data.demo import write_demo_data

    cfg = load_config(config)
    path = Path(cfg["data"]["path"])
    if path.exists():
        return
    if (cfg.get("run") or {}).get("name") != "demo":  # never stand synthetic data in for a real, missing file
        raise ConfigError(
            f"{config}: data.path '{path}' does not exist, and --demo makes the synthetic demo data only for the "
            "demo configuration (run.name: demo). Fix: correct data.path (relative paths start at the "
            "configuration file's folder), or run without --demo to get the full list of missing inputs."
        )
    demo_cfg = cfg["data"].get("demo") or {}
    n = int(demo_cfg.get("n_customers", 20_000))
    with console.status(f"Demo data not found; generating {n:,} customers into {path.parent} ..."):
        write_demo_data(path.parent, n_customers=n, seed=int(demo_cfg.get("seed", 42)))


@app.command("score")
@friendly_errors
def score(
    model: Path = typer.Option(..., "--model", "-m", help="A saved segmentation (model.joblib from a run folder)."),
    data: Path = typer.Option(..., "--data", "-d", help="A transaction log (CSV/Parquet) or a customer feature table (Parquet)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file: .parquet or .csv."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Run configuration for column mapping and data-quality policies of a transaction log."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Date the features are computed at (default: the day after the last transaction)."),
) -> None:
    """Assign segments to customers of a new transaction log or feature table with a saved model."""
    from segmentation_lib.score.scoring import score_file

    with console.status(f"Scoring {data} ..."):
        summary = score_file(model, data, out, config=config, as_of=as_of)
    typer.echo(summary)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
