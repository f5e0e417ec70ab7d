"""The `segment` command line: demo data, data checks, report runs and scoring for scheduled use.

    segment init my_log.csv                       # a commented configuration for your data
    segment demo-data --out data/demo
    segment check-data --config configs/default.yaml
    segment run --config configs/default.yaml
    segment score --model reports/<run>/model.joblib --data new_log.parquet --out scores.parquet
    segment experiment --config configs/default.yaml --exposures exposures.parquet
    segment clean --dry-run      # what killed runs left under reports/ (then without --dry-run to remove it)

Every command exits 0 on success, 2 with a one-paragraph message on bad input or configuration,
and 1 when a report run fails (the failed notebook is kept in a `failed-...` folder).

The options that override a configuration setting are defined once (:data:`DataOption`,
:data:`PresetOption`, :data:`AsOfOption`, :data:`SeedOption`, :data:`ConfigOption`) and turned
into configuration overrides by one function, :func:`config_overrides`.
"""
from __future__ import annotations

import errno
import functools
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console

from segmentation_lib.errors import ConfigError, SegmentationError

app = typer.Typer(
    name="segment",
    help="Customer segmentation kit: turn a transaction log into segments a business can act on.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: no type column (no "<bool>" after flags), choices as [a|b]
)
console = Console(stderr=True)

#: metavar for plain on/off flags (kept for older call sites; click's plain help shows none)
FLAG = " "

#: where the commands look for a configuration when no --config is given, in this order
DEFAULT_CONFIGS = (Path("configs/default.yaml"), Path("segment.yaml"))

# --------------------------------------------------------------------------- shared options
# one definition of each option that overrides a configuration setting, used by every command

ConfigOption = Annotated[Optional[Path], typer.Option(
    "--config", "-c", metavar="PATH",
    help="Run configuration YAML (default: ./configs/default.yaml, else ./segment.yaml; "
         "'segment init DATA_FILE' writes one).")]
DataOption = Annotated[Optional[Path], typer.Option(
    "--data", metavar="PATH", help="Transaction log instead of data.path (CSV/Parquet file, folder or glob).")]
PresetOption = Annotated[Optional[str], typer.Option(
    "--preset", metavar="NAME", help="Column preset instead of data.preset, e.g. online_retail.")]
AsOfOption = Annotated[Optional[str], typer.Option(
    "--as-of", metavar="DATE",
    help="Analysis date instead of run.as_of: YYYY-MM-DD, or today (default: the day after the last transaction).")]
SeedOption = Annotated[Optional[int], typer.Option(
    "--seed", metavar="INT", help="Random seed instead of run.seed (the same seed gives the same report).")]
OutOption = Annotated[Optional[Path], typer.Option(
    "--out", metavar="PATH", help="Reports folder (default: report.out_dir of the configuration).")]


def config_overrides(data: Path | str | None = None, preset: str | None = None, as_of: str | None = None,
                     seed: int | None = None) -> dict[str, Any]:
    """The configuration overrides of the shared command-line options (only the ones given).

    >>> config_overrides(preset="online_retail", as_of="today", seed=3)
    {'data': {'preset': 'online_retail'}, 'run': {'as_of': 'today', 'seed': 3}}
    """
    out: dict[str, Any] = {}
    if data is not None:
        out.setdefault("data", {})["path"] = str(Path(data).resolve())
    if preset is not None:
        out.setdefault("data", {})["preset"] = preset
    if as_of is not None:
        out.setdefault("run", {})["as_of"] = as_of
    if seed is not None:
        out.setdefault("run", {})["seed"] = seed
    return out


def find_config(config: Path | None) -> Path:
    """The configuration file to use: ``--config`` as given, else the first of :data:`DEFAULT_CONFIGS`
    found in the current folder; a ConfigError says where the kit looked and how to start."""
    if config is not None:
        return config
    for candidate in DEFAULT_CONFIGS:
        if candidate.is_file():
            return candidate
    looked = " and ".join(f"'{(Path.cwd() / c)}'" for c in DEFAULT_CONFIGS)
    raise ConfigError(
        f"No configuration given and none found: the kit looked for {looked}. Fix: start one for your data "
        "with 'segment init YOUR_DATA_FILE' (writes segment.yaml with the column mapping guessed from the "
        "header), run from the kit's folder to use configs/default.yaml, or pass --config PATH."
    )


class Engine(str, Enum):
    """Where the log is read and summarised (``engine.kind``)."""

    polars = "polars"
    spark = "spark"


class DataFormat(str, Enum):
    """File formats of ``segment demo-data``."""

    parquet = "parquet"
    csv = "csv"


def _version_callback(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"segment {version('segmentation-kit')}")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
            typer.echo("segment (version unknown: the package is not installed)")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Customer segmentation kit: turn a transaction log into segments a business can act on."""

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


def os_error_message(exc: OSError, where: str | None = None) -> str:
    """One paragraph for a file-system error: which path, what went wrong, the fix.

    ``where`` names the path when the error does not (a full disk or a read-only file system
    reported by a library writing in a folder, e.g. the command's output folder).

    >>> os_error_message(FileExistsError(17, "File exists", "/tmp/a.csv"))
    "Cannot use the path '/tmp/a.csv': a file is in the way where a folder is expected (File exists). Fix: choose an output path whose folders are folders (not files), or move that file away."
    >>> os_error_message(OSError(28, "No space left on device"), "reports")
    "Cannot use the path 'reports': the disk is full (No space left on device). Fix: free some space or choose a folder on another disk."
    """
    path = exc.filename if exc.filename is not None else where or "(unknown path)"
    what, fix = _OS_FIXES.get(exc.errno, ("the operating system refused the operation",
                                          "check the path, its permissions and the free disk space"))
    if exc.errno in (errno.EEXIST, errno.ENOTDIR) and exc.filename is not None:
        blocker = next((a for a in [Path(path), *Path(path).parents] if a.is_file()), None)
        if blocker is not None and str(blocker) != str(path):
            what = f"'{blocker}' is a file where a folder is expected"
    detail = exc.strerror or type(exc).__name__
    return f"Cannot use the path '{path}': {what} ({detail}). Fix: {fix}."


def interrupted_message(kept_folder: Path | None = None, stopped_during: str | None = None) -> str:
    """What an interruption left behind, exactly: the kept folder of a stopped run and its files.

    >>> interrupted_message()
    'Interrupted: the command stopped before it finished. Nothing of this run was kept (its temporary folder was removed); earlier reports are unchanged.'
    """
    from segmentation_lib.report.pipeline import kept_sentence

    if kept_folder is None or not Path(kept_folder).is_dir():
        return f"Interrupted: the command stopped before it finished. {kept_sentence(None)}"
    files = sorted(p.name for p in Path(kept_folder).iterdir())
    during = f" during {stopped_during}" if stopped_during else ""
    return (f"Interrupted{during}: no report was published and earlier reports are unchanged. The unfinished run "
            f"was kept in {kept_folder}, which holds {', '.join(files) or 'nothing'} (FAILED.txt says where it "
            "stopped); delete it when you no longer need it.")


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
            kept = getattr(exc, "kept_sentence", "")  # a run says what of it was kept
            console.print(f"[bold red]Error:[/bold red] {os_error_message(exc, _output_of(kwargs))}{' ' + kept if kept else ''}",
                          highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt as exc:
            console.print(f"[yellow]{interrupted_message(getattr(exc, 'kept_folder', None), getattr(exc, 'stopped_during', None))}[/yellow]",
                          highlight=False, soft_wrap=True)
            raise typer.Exit(code=130) from None

    return wrapper


def _output_of(kwargs: dict) -> str | None:
    """The path a command writes to, for errors that name none (``--out``, else report.out_dir of ``--config``)."""
    if kwargs.get("out") is not None:
        return str(kwargs["out"])
    if kwargs.get("config") is not None:
        from segmentation_lib.config import load_config

        try:
            return str(load_config(kwargs["config"])["report"]["out_dir"])
        except Exception:  # noqa: BLE001 - only a better message is lost
            return None
    return None


@app.command("demo-data")
@friendly_errors
def demo_data(
    out: Path = typer.Option(Path("data/demo"), "--out", help="Folder to write transactions, customers and truth Parquet files into."),
    n_customers: int = typer.Option(20_000, "--n-customers", min=10, help="Number of customers to generate."),
    seed: int = typer.Option(42, "--seed", help="Random seed; the same seed gives identical files."),
    fmt: DataFormat = typer.Option(DataFormat.parquet, "--format", help="File format of the written files."),
    categories: bool = typer.Option(False, "--categories", metavar=FLAG,
                                    help="Add a product category column (map it with data.columns.category)."),
    discounts: bool = typer.Option(False, "--discounts", metavar=FLAG,
                                   help="Add a discount column, money off per line (map it with data.columns.discount)."),
    feedback: bool = typer.Option(False, "--feedback", metavar=FLAG, help="Add survey and support columns (nps_score, "
                                  "ticket_count, sentiment) to the customer table, planted by archetype."),
) -> None:
    """Generate a realistic demo transaction log with planted customer archetypes (the known truth)."""
    from segmentation_lib.data.demo import write_demo_data
    from segmentation_lib.report.progress import step

    mix = {k: True for k, on in (("categories", categories), ("discounts", discounts), ("feedback", feedback)) if on}  # off: files unchanged
    with step(f"Generating {n_customers:,} customers into {out}", console=console):
        paths = write_demo_data(out, n_customers=n_customers, seed=seed, fmt=DataFormat(fmt).value, **mix)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


@app.command("check-data")
@friendly_errors
def check_data(
    config: ConfigOption = None,
    data: DataOption = None,
    preset: PresetOption = None,
    as_of: AsOfOption = None,
    as_json: bool = typer.Option(False, "--json", metavar=FLAG, help="Print the report as JSON (for scheduled checks)."),
    fail_on_exclusions: Optional[float] = typer.Option(
        None, "--max-excluded-share", min=0.0, max=1.0,
        help="Exit 1 when more than this share of rows is excluded (e.g. 0.05), for alerting. Without it the "
             "configuration's quality.max_excluded_share applies, as in `segment run` (exit 2 above it)."),
) -> None:
    """Read the transaction log as configured, apply the data-quality rules and print the report."""
    from segmentation_lib.config import load_config
    from segmentation_lib.report.progress import step

    cfg = load_config(find_config(config), overrides=config_overrides(data, preset, as_of))
    from segmentation_lib.data.quality import load_transactions

    from segmentation_lib.config import usage_only
    from segmentation_lib.features.usage import usage_only_inputs

    source = cfg["data"]["path"] or f"{cfg['data']['events']['path']} (usage-only: the sessions of the event log)"
    with step(f"Checking {source}", console=console):
        _, report = usage_only_inputs(cfg)[:2] if usage_only(cfg) else load_transactions(cfg)
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
    if fail_on_exclusions is None:
        report.policy.check_excluded_share(report)  # the limit `segment run` stops at (DataError, exit 2)


@app.command("run")
@friendly_errors
def run(
    config: ConfigOption = None,
    out: OutOption = None,
    demo: bool = typer.Option(False, "--demo", metavar=FLAG, help="Generate the demo data first if data.path does not exist."),
    data: DataOption = None,
    preset: PresetOption = None,
    as_of: AsOfOption = None,
    seed: SeedOption = None,
    reference: Optional[Path] = typer.Option(None, "--reference", help="An earlier run folder: score with its frozen model, RFM edges, segment map and rules (overrides run.reference)."),
    compare_to: Optional[Path] = typer.Option(None, "--compare-to", help="The run folder 'Since last run' compares with (default: the latest earlier run of this run.name)."),
    engine: Optional[Engine] = typer.Option(None, "--engine", help="Overrides engine.kind: polars (one machine) or spark (docs/spark.md)."),
) -> None:
    """Execute the report notebooks with papermill into a new folder under reports/ and print its index.html."""
    from segmentation_lib.report.pipeline import run_pipeline

    config = find_config(config)
    overrides = config_overrides(data, preset, as_of, seed)
    if engine:  # recorded with the other overrides (manifest, run_config.yaml the notebooks read)
        overrides.setdefault("engine", {})["kind"] = Engine(engine).value
    if demo:
        _ensure_demo_data(config, overrides)
    index = run_pipeline(config, out_dir=out, reference=reference, compare_to=compare_to,
                         **({"overrides": overrides} if overrides else {}))
    typer.echo(str(index))


@app.command("clean")
@friendly_errors
def clean(
    config: ConfigOption = None,
    out: OutOption = None,
    dry_run: bool = typer.Option(False, "--dry-run", metavar=FLAG, help="Only list what would be removed."),
) -> None:
    """Remove what killed runs left in the reports folder: temporary run folders (they can hold customer data)
    and temporary files whose process is gone. Folders of runs still in progress are kept. `segment run`
    does the same when it starts."""
    from segmentation_lib.report.runs import leftovers, leftovers_message, remove_leftovers

    if out is None:
        from segmentation_lib.config import load_config

        out = Path((load_config(find_config(config)).get("report") or {}).get("out_dir") or "reports")
    removed = remove_leftovers(out, dry_run=dry_run)
    kept = [x for x in leftovers(out) if not x.stale]
    if removed:
        typer.echo(leftovers_message(removed, dry_run=dry_run))
    for item in kept:
        typer.echo(f"Kept {item.path}: {item.reason}.")
    if not removed and not kept:
        typer.echo(f"Nothing to clean in {out}.")


def _ensure_demo_data(config: Path, overrides: dict | None = None) -> None:
    from segmentation_lib.config import load_config
    from segmentation_lib.data.demo import write_demo_data
    from segmentation_lib.report.progress import step

    cfg = load_config(config, overrides=overrides)
    path = Path(cfg["data"]["path"] or (cfg["data"].get("events") or {}).get("path") or "")  # usage-only: the event log
    if path.exists():
        return
    demo_cfg = cfg["data"].get("demo") or {}
    saas = demo_cfg.get("kind") == "saas"  # (an explicit request for the SaaS demo)
    if (cfg.get("run") or {}).get("name") != "demo" and not saas:  # never stand synthetic data in for a real, missing file
        raise ConfigError(
            f"{config}: data.path '{path}' does not exist, and --demo makes the synthetic demo data only for the "
            "demo configuration (run.name: demo). Fix: correct data.path (relative paths start at the "
            "configuration file's folder), or run without --demo to get the full list of missing inputs."
        )
    n = int(demo_cfg.get("n_customers", 20_000))
    if saas:
        from segmentation_lib.data.demo_usage import write_demo_usage

        with step(f"SaaS demo data not found; generating {n:,} accounts into {path.parent}", console=console):
            write_demo_usage(path.parent, n_accounts=n, seed=int(demo_cfg.get("seed", 42)))
        return
    with step(f"Demo data not found; generating {n:,} customers into {path.parent}", console=console):
        write_demo_data(path.parent, n_customers=n, seed=int(demo_cfg.get("seed", 42)))


@app.command("score")
@friendly_errors
def score(
    model: Path = typer.Option(..., "--model", "-m", help="A saved segmentation (model.joblib from a run folder)."),
    data: Path = typer.Option(..., "--data", "-d", help="A transaction log (CSV/Parquet) or a customer feature table (Parquet)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file: .parquet or .csv."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Run configuration for column mapping and data-quality policies of a transaction log."),
    as_of: AsOfOption = None,
    preset: PresetOption = None,
    trust_model: bool = typer.Option(
        False, "--trust-model", metavar=FLAG,
        help="Open a model file whose SHA-256 is not recorded in the manifest.json beside it (or differs from the "
             "record). Only for files you made yourself: a model file from elsewhere can run code when opened."),
) -> None:
    """Assign segments to customers of a new transaction log or feature table with a saved model.

    Only model files the kit saved are opened: the file's SHA-256 must match the one recorded in the
    manifest.json of its run folder (or of the folder save_model wrote it to).
    """
    from segmentation_lib.report.progress import step
    from segmentation_lib.score.scoring import score_file

    overrides = config_overrides(preset=preset)
    with step(f"Scoring {data}", console=console):
        summary = score_file(model, data, out, config=config, as_of=as_of, trust_model=trust_model,
                             **({"overrides": overrides} if overrides else {}))
    typer.echo(summary)


@app.command("init")
@friendly_errors
def init(
    data_file: Path = typer.Argument(..., metavar="DATA_FILE", help="Your transaction log (CSV/Parquet file, folder or glob)."),
    out: Path = typer.Option(Path("segment.yaml"), "--out", "-o", metavar="PATH", help="Configuration file to write."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Write without asking (the mapping is still shown)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing configuration file."),
) -> None:
    """Write a commented configuration for DATA_FILE, with the column mapping guessed from its header."""
    from segmentation_lib.config import init_config_text, load_config
    from segmentation_lib.data.read import guess_columns, read_header

    if out.exists() and not force:
        raise ConfigError(f"'{out}' already exists. Fix: pass --out with another file name, or --force to overwrite it.")
    header = read_header(data_file)
    columns, preset = guess_columns(header)
    typer.echo(f"Columns of {data_file}: {', '.join(header)}")
    if preset:
        typer.echo(f"The header matches the '{preset}' layout: data.preset: {preset} maps every column.")
    else:
        typer.echo("Column mapping guessed from the header (kit column <- your column):")
        for canonical, source in columns.items():
            typer.echo(f"  {canonical:<12} <- {source if source else '(not found)'}")
    missing = [c for c in ("customer_id", "timestamp") if not preset and not columns.get(c)]
    if not preset and not columns.get("amount") and not (columns.get("quantity") and columns.get("unit_price")):
        missing.append("amount (or quantity and unit_price)")
    if missing:
        typer.echo(f"Not found: {', '.join(missing)}. Edit data.columns in {out} before running.")
    if not yes and sys.stdin.isatty() and not typer.confirm(f"Write {out} with this mapping?", default=True):
        raise typer.Exit(code=1)
    text = init_config_text(data_file, out, columns, preset, header)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    load_config(out)  # the written file is a valid configuration
    typer.echo(f"Wrote {out}. Next: segment check-data --config {out}   then   segment run --config {out}")


@app.command("experiment")
@friendly_errors
def experiment(
    config: ConfigOption = None,
    exposures: Optional[Path] = typer.Option(None, "--exposures", "-e", help="Exposures table (CSV/Parquet): customer id, variant, exposure time; default experiment.path."),
    out: OutOption = None,
) -> None:
    """Read an experiment by segment (lift, SRM, heterogeneity, CUPED, Simpson check) into an HTML page and experiment.json."""
    from segmentation_lib.report.experiment import run_experiment_report

    from segmentation_lib.report.progress import step

    with step(f"Reading the experiment {exposures or ''}", console=console):
        page = run_experiment_report(find_config(config), exposures, out_dir=out)
    typer.echo(str(page))


@app.command("demo-experiment")
@friendly_errors
def demo_experiment(
    data: Path = typer.Option(Path("data/demo"), "--data", help="Folder of the demo data (from `segment demo-data`)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for exposures and experiment_truth.json (default: --data)."),
    split_change: bool = typer.Option(False, "--split-change", metavar=FLAG, help="Plant a mid-test traffic-split change (90/10 ramp-up, then equal)."),
    variants: int = typer.Option(2, "--variants", help="2 (control, treatment) or 3 (control, B, C)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives identical files."),
    fmt: DataFormat = typer.Option(DataFormat.parquet, "--format", help="File format of the written files."),
) -> None:
    """Plant an experiment with known per-archetype effects on the demo customers (exposures + truth)."""
    from segmentation_lib.data.demo_experiment import write_demo_experiment

    paths = write_demo_experiment(data, out, seed=seed, split_change=split_change, variants=variants, fmt=DataFormat(fmt).value)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


@app.command("compare")
@friendly_errors
def compare(
    run_a: Path = typer.Argument(..., help="The earlier run folder (reports/<date>_<time>_<id>)."),
    run_b: Path = typer.Argument(..., help="The later run folder."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for comparison.html and the Parquet tables (default: reports/compare-<A>-<B>)."),
) -> None:
    """Compare two runs: transitions per method, size and revenue change, movers (HTML + Parquet)."""
    from segmentation_lib.report.history import write_comparison

    dest = out or run_b.parent / f"compare-{run_a.name}-{run_b.name}"
    typer.echo(str(write_comparison(run_a, run_b, dest)))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
