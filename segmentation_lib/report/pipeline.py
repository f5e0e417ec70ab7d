"""The report pipeline: execute the report notebooks with papermill into one atomic run folder.

``run_pipeline`` runs ``notebooks/01_exploration`` .. ``05_value`` in order in the project's own
kernel (registered automatically as ``segmentation-kit``), each notebook writing its tables into the
run folder (see :mod:`segmentation_lib.stages`). It then renders a code-free HTML page per notebook,
the run's ``index.html`` and ``manifest.json``, and moves the folder into place:

    reports/.tmp-<id>/                 while running (never listed)
    reports/<YYYY-MM-DD>_<HHMMSS>_<id>/ on success
    reports/failed-<YYYY-MM-DD>_<HHMMSS>_<id>/  when a notebook fails or the run is interrupted

>>> index = run_pipeline("configs/default.yaml")  # doctest: +SKIP
>>> index.name  # doctest: +SKIP
'index.html'
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from glob import glob
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from segmentation_lib.errors import ConfigError, DataError, PipelineError
from segmentation_lib.paths import PACKAGE_DIR, REPO_DIR
from segmentation_lib.report.files import file_hashes, json_default, sha256_file, write_json
from segmentation_lib.report.timings import take_stage_times
from segmentation_lib.report.runs import OWNER_FILE, TMP_PREFIX, leftovers_message, remove_leftovers, run_names, write_owner


#: name of the Jupyter kernel the notebooks run in (this environment's Python)
KERNEL_NAME = "segmentation-kit"
DEFAULT_NOTEBOOKS = ("01_exploration", "02_rfm", "03_clustering", "04_validation", "05_value", "06_since_last_run")
#: files removed from the run folder before it is moved into place (intermediate hand-off data)
WORK_DIR = "work"
#: the effective configuration (file plus overrides) the notebooks of a run read, when there are overrides
RUN_CONFIG = "run_config.yaml"
#: libraries whose versions go into the manifest
VERSIONED = ("segmentation-kit", "polars", "pyarrow", "numpy", "pandas", "scikit-learn", "hdbscan",
             "matplotlib", "seaborn", "papermill", "nbconvert", "ipykernel", "pyyaml", "joblib")


# --------------------------------------------------------------------------- kernel


KERNEL_QUIET = "--IPKernelApp.log_level=ERROR"


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """Register this Python as Jupyter kernel ``name`` in ``sys.prefix`` unless it already is; return the name.

    Idempotent and local to the environment (no ``--user`` install), so a fresh clone or CI needs no
    manual ``ipykernel install`` step.

    >>> ensure_kernel()  # doctest: +SKIP
    'segmentation-kit'
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
        # compare the venv's own interpreter path (not symlink-resolved: every venv resolves to the same base)
        if (spec.argv and KERNEL_QUIET in spec.argv
                and Path(os.path.abspath(spec.argv[0])).parent == Path(os.path.abspath(sys.executable)).parent):
            return name
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    try:
        dest = install(kernel_name=name, display_name="Python (segmentation-kit)", prefix=sys.prefix)
    except OSError as exc:  # read-only environment: fall back to the user's data dir
        try:
            dest = install(kernel_name=name, display_name="Python (segmentation-kit)", user=True)
        except OSError:
            raise PipelineError(
                f"Could not register the Jupyter kernel '{name}' ({exc}). Fix: run "
                f"`{sys.executable} -m ipykernel install --user --name {name}` once, then rerun."
            ) from None
    # keep the kernel's own start-up warnings (e.g. "running over TCP without encryption") out of
    # scheduled-run logs; notebook errors still reach the executed notebook and the run's message
    spec_file = Path(dest) / "kernel.json"
    spec_json = json.loads(spec_file.read_text())
    if KERNEL_QUIET not in spec_json["argv"]:
        spec_json["argv"].append(KERNEL_QUIET)
        spec_file.write_text(json.dumps(spec_json, indent=1))
    return name


def _expand(path: str | None) -> list[Path]:
    if not path or "://" in str(path):
        return []
    p = Path(path)
    if any(ch in str(path) for ch in "*?["):
        return sorted(Path(x) for x in glob(str(path), recursive=True) if Path(x).is_file())
    if p.is_dir():
        return sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith("."))
    return [p] if p.is_file() else []


def input_files(cfg: Mapping[str, Any]) -> dict[str, list[Path]]:
    """The files a run reads, by role: ``transactions``, ``customers``, ``truth`` (existing files only)."""
    data = cfg.get("data") or {}
    return {
        "transactions": _expand(data.get("path")),
        "customers": _expand((data.get("customers") or {}).get("path")),
        "truth": _expand(data.get("truth")),
        "events": _expand((data.get("events") or {}).get("path")),
    }


def fingerprint(cfg: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Path, size and SHA-256 of every input file, by role (for the manifest)."""
    return {role: [{"path": str(p), "bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in paths]
            for role, paths in input_files(cfg).items()}


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the results (for the manifest)."""
    from segmentation_lib.score.persistence import library_versions as versions_of

    return versions_of(VERSIONED)


def git_revision(path: Path = REPO_DIR) -> str | None:
    """``git rev-parse HEAD`` of the repository holding the kit (``+dirty`` when modified), or None."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------- notebooks


def notebook_dir() -> Path:
    """Where the report notebooks live: the repository's ``notebooks/`` or the package's copy."""
    for cand in (REPO_DIR / "notebooks", PACKAGE_DIR / "notebooks"):
        if (cand / f"{DEFAULT_NOTEBOOKS[0]}.ipynb").is_file():
            return cand
    return REPO_DIR / "notebooks"


def resolve_notebooks(names: Sequence[str], folder: Path | None = None) -> list[Path]:
    """Paths of the named notebooks (``01_exploration`` or ``01_exploration.ipynb``); ConfigError if one is missing."""
    folder = Path(folder) if folder else notebook_dir()
    paths = []
    for name in names:
        p = folder / (name if str(name).endswith(".ipynb") else f"{name}.ipynb")
        if not p.is_file():
            known = ", ".join(sorted(x.stem for x in folder.glob("*.ipynb"))) or "none"
            raise ConfigError(
                f"report.notebooks names '{name}', but {p} does not exist (notebooks in {folder}: {known}). "
                f"Fix: list existing notebooks under report.notebooks in the configuration."
            )
        paths.append(p)
    return paths


def _first_line(source: str | None) -> str:
    for line in (source or "").splitlines():
        if line.strip() and not line.strip().startswith("#"):
            return line.strip()[:120]
    return (source or "").strip().splitlines()[0][:120] if (source or "").strip() else "(empty cell)"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ARROW = re.compile(r"^-+>\s*\d+\s(.*)$", re.M)


def _failing_line(traceback: Sequence[str] | None, source: str | None) -> str:
    """The line of the cell that raised (IPython's ``---->`` marker in the cell's frame), else its first line."""
    for frame in traceback or []:
        text = _ANSI.sub("", frame)
        if text.startswith("Cell In["):
            hit = _ARROW.search(text)
            if hit and hit.group(1).strip():
                return hit.group(1).strip()[:120]
    return _first_line(source)


#: errors the library raises for bad input or configuration: a notebook raising one fails the run with
#: the library's one-paragraph message and exit code 2 (bad input), not 1 (a failing step)
USER_ERRORS = ("DataError", "ConfigError", "ModelError")


@contextlib.contextmanager
def _kernel_env(extra: Mapping[str, str]) -> Iterator[None]:
    """Environment the kernel inherits: progress bars off, deterministic hashing, inline figures."""
    saved = dict(os.environ)
    try:
        os.environ.update(extra)
        os.environ["TQDM_DISABLE"] = "1"
        os.environ["PYTHONHASHSEED"] = "0"
        if os.environ.get("MPLBACKEND", "").lower() == "agg":  # Agg would capture no figures
            os.environ.pop("MPLBACKEND")
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while a run is in progress (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: papermill engine registered by :func:`_register_engine` (papermill's nbclient engine, see there)
ENGINE_NAME = "segmentation-kit"
_ENGINE_REGISTERED = False


def _register_engine() -> str:
    """Register (once) papermill's nbclient engine with one change: an interrupted run kills its kernel at once.

    Stopping a run (Ctrl-C, SIGTERM) raises KeyboardInterrupt while a cell is executing. papermill's
    client then shuts the kernel down *gracefully*: jupyter_client interrupts the cell and sends a
    shutdown request at the same time, the kernel closes its sockets first and logs one
    "[IPKernelApp] ERROR ... ZMQError: Socket operation on non-socket" traceback to the terminal
    while sending the interrupted cell's reply. Nothing of that kernel is kept (the run folder is
    moved to ``failed-...``), so on KeyboardInterrupt / SystemExit the client shuts it down
    ``immediate``-ly instead (nbclient's ``shutdown_kernel`` option: the process is killed, it
    prints nothing). Successful and failing notebooks keep the graceful shutdown.
    """
    from contextlib import contextmanager

    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger

    global _ENGINE_REGISTERED
    if _ENGINE_REGISTERED:
        return ENGINE_NAME

    class _Client(PapermillNotebookClient):
        @contextmanager
        def setup_kernel(self, **kwargs: Any) -> Iterator[None]:
            with super().setup_kernel(**kwargs):
                try:
                    yield
                except (KeyboardInterrupt, SystemExit):
                    self.shutdown_kernel = "immediate"  # read by the cleanup of super().setup_kernel
                    raise

    class _Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None,
                                     start_timeout=60, execution_timeout=None, **kwargs):
            # as NBClientEngine.execute_managed_notebook (papermill 2.x), with the client above
            kwargs = {k: v for k, v in kwargs.items() if k not in ("input_path", "timeout", "startup_timeout")}
            return _Client(nb_man, timeout=execution_timeout, startup_timeout=start_timeout, kernel_name=kernel_name,
                           log=logger, log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file,
                           **kwargs).execute()

    papermill_engines.register(ENGINE_NAME, _Engine)
    _ENGINE_REGISTERED = True
    return ENGINE_NAME


#: run in a kernel started ahead of its notebook: the report's heavy imports (pages and plots, the
#: clustering and model files: seconds each) happen while the notebook before it runs
WARM_UP_CODE = ("import segmentation_lib.report.pages, segmentation_lib.score.persistence, "
                "segmentation_lib.segment.clustering, segmentation_lib.segment.surrogate")


class WarmKernel:
    """A kernel for the next notebook, started in a background thread while the current notebook runs: the
    kernel's start-up and :data:`WARM_UP_CODE` overlap the running notebook instead of following it.

    ``take()`` waits for it and returns its (async) kernel manager, or None when it could not start (the
    notebook then starts a kernel of its own, as without warming). The kernel is the pipeline's to shut
    down (:meth:`shutdown`), not papermill's.
    """

    def __init__(self, kernel_name: str, cwd: Path) -> None:
        self.km: Any = None
        self.error: BaseException | None = None
        self.waited = 0.0
        self._thread = threading.Thread(target=self._start, args=(kernel_name, cwd), daemon=True)
        self._thread.start()

    def _start(self, kernel_name: str, cwd: Path) -> None:
        import asyncio

        from jupyter_client.manager import AsyncKernelManager

        try:
            km = AsyncKernelManager(kernel_name=kernel_name)
            self.km = km
            asyncio.run(km.start_kernel(cwd=str(cwd)))
            kc = km.blocking_client()
            kc.start_channels()
            try:
                kc.wait_for_ready(timeout=120)
                kc.execute_interactive(WARM_UP_CODE, silent=True, store_history=False, timeout=300)
            finally:
                kc.stop_channels()
        except Exception as exc:  # noqa: BLE001 - any failure: the notebook starts its own kernel
            self.error = exc

    def take(self) -> Any:
        """The started kernel's manager (after waiting for it), or None when it failed to start."""
        import time

        t0 = time.monotonic()
        self._thread.join()
        self.waited = time.monotonic() - t0
        if self.error is not None or self.km is None or not self.km.has_kernel:
            self.shutdown(now=True)
            return None
        return self.km

    def shutdown(self, now: bool = False) -> None:
        """Stop the kernel: at once (``now``: killed, as an interrupted run does) or gracefully."""
        import asyncio

        self._thread.join()
        km, self.km = self.km, None
        if km is None or not km.has_kernel:
            return
        try:
            asyncio.run(km.shutdown_kernel(now=now))
        except Exception:  # noqa: BLE001 - the process must not outlive the run: kill it
            with contextlib.suppress(Exception):
                km.provisioner.process.kill()


def execute_notebook(src: Path, dst: Path, parameters: Mapping[str, Any], kernel_name: str,
                     cwd: Path, timeout: int | None = None, km: Any = None) -> None:
    """Execute one notebook with papermill; on a failing cell raise PipelineError naming the cell.

    The executed notebook (with papermill's error banner on failure) is always written to ``dst``.
    ``km``: the manager of an already started kernel (:class:`WarmKernel`) to run it in.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    try:
        pm.execute_notebook(str(src), str(dst), parameters=dict(parameters), kernel_name=kernel_name,
                            engine_name=_register_engine(), progress_bar=False, log_output=False, cwd=str(cwd),
                            execution_timeout=timeout, **({"km": km} if km is not None else {}))
    except PapermillExecutionError as err:
        evalue = " ".join(str(err.evalue).split())
        if err.ename in USER_ERRORS:  # bad input: the library's own message and exit code 2
            bad = PipelineError(f"Notebook {src.stem} failed on bad input ({err.ename}): {evalue}")
            bad.bad_input = True
            raise bad from None
        raise PipelineError(
            f"Notebook {src.stem} failed in cell {err.exec_count} (`{_failing_line(err.traceback, err.source)}`): "
            f"{err.ename}: {evalue}"
        ) from None


def _run_notebook(src: Path, dst: Path, params: Mapping[str, Any], kernel: str, cwd: Path, timeout: int | None,
                  km: Any) -> None:
    """:func:`execute_notebook` in the started kernel ``km`` (None: papermill starts one)."""
    if km is None:
        execute_notebook(src, dst, params, kernel, cwd=cwd, timeout=timeout)
    else:
        execute_notebook(src, dst, params, kernel, cwd=cwd, timeout=timeout, km=km)


@contextlib.contextmanager
def _warm_kernels() -> Iterator[list[WarmKernel]]:
    """The list of kernels started ahead; whatever is left in it (or running) when the block ends, by success,
    failure or interrupt, is killed at once (an interrupted run leaves no kernel behind)."""
    warm: list[WarmKernel] = []
    try:
        yield warm
    finally:
        for w in warm:
            w.shutdown(now=True)


def _fail(tmp: Path, failed: Path, message: str) -> Path | None:
    """Move the temporary folder to ``failed`` (keeping the executed notebooks) with a FAILED.txt.

    The customer hand-off data (``work/``) and any notebook left truncated (a full disk) are removed
    first. When the folder cannot be completed (FAILED.txt cannot be written, the move fails) it is
    removed entirely and None is returned: a failed run is kept readable, or not at all.
    """
    from segmentation_lib.report.html import readable_notebook

    try:
        shutil.rmtree(tmp / WORK_DIR, ignore_errors=True)
        (tmp / OWNER_FILE).unlink(missing_ok=True)
        for nb in tmp.glob("*.ipynb"):
            if not readable_notebook(nb):
                nb.unlink()
        (tmp / "FAILED.txt").write_text(message + "\n", encoding="utf-8")
        os.replace(tmp, failed)
        return failed
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return None


def kept_sentence(failed: Path | None) -> str:
    """What a failed or interrupted run left, in words (for its error message and the CLI).

    >>> kept_sentence(None)
    'Nothing of this run was kept (its temporary folder was removed); earlier reports are unchanged.'
    """
    if failed is None:
        return "Nothing of this run was kept (its temporary folder was removed); earlier reports are unchanged."
    return (f"The executed notebooks and FAILED.txt (the reason) are kept in {failed}; the customer hand-off data "
            "was removed and earlier reports are unchanged.")


def check_inputs(cfg: Mapping[str, Any], config_path: Path | str) -> None:
    """Fail before any notebook runs when an input file of the configuration is missing.

    >>> check_inputs({"data": {"path": "/nowhere/tx.parquet", "truth": None}}, "my.yaml")
    Traceback (most recent call last):
    ...
    segmentation_lib.errors.ConfigError: my.yaml: data.path '/nowhere/tx.parquet' does not exist. Fix: correct the path in the configuration (relative paths start at the configuration file's folder); data.customers.path and data.truth may be null. The demo data is made by `segment demo-data` (or `make report` with the default configuration).
    """
    data = cfg.get("data") or {}
    inputs = [("data.path", data.get("path")), ("data.customers.path", (data.get("customers") or {}).get("path")),
              ("data.truth", data.get("truth")), ("data.events.path", (data.get("events") or {}).get("path"))]
    problems = []
    for key, value in inputs:
        if not value or _expand(value):  # the same resolution as the run's input files (file, folder, glob)
            continue
        text = str(value)
        what = "matches no file" if any(ch in text for ch in "*?[") else (
            "holds no file" if Path(text).is_dir() else "is a symbolic link that leads nowhere"
            if Path(text).is_symlink() and not Path(text).exists() else "is not a regular file (a pipe or device)"
            if Path(text).exists() else "does not exist")
        problems.append(f"{key} '{text}' {what}")
    if problems:
        plural = "s" if len(problems) > 1 else ""
        raise ConfigError(
            f"{config_path}: {'; '.join(problems)}. Fix: correct the path{plural} in the configuration (relative "
            "paths start at the configuration file's folder); data.customers.path and data.truth may be null. "
            "The demo data is made by `segment demo-data` (or `make report` with the default configuration)."
        )


#: notebooks that split the history into calibration and holdout (validation.holdout_days)
HOLDOUT_NOTEBOOKS = ("04_validation", "05_value")


def preflight(cfg: Mapping[str, Any], config_path: Path | str,
              notebooks: Sequence[str] = DEFAULT_NOTEBOOKS, kit_notebooks: bool = True) -> dict[str, Any]:
    """What can be checked before the first notebook, so a run fails in seconds and not in notebook 3 or 4:
    the segment map covers every score code, the rules parse, and the log (one lazy pass over its
    customer, time and amount columns) has purchases and, when ``notebooks`` holds the validation or
    value page, a history longer than the holdout.
    Returns the log's span (``rows``, ``purchases``, ``first``, ``last``); raises ConfigError / DataError.
    Without ``data.path``: :func:`usage_preflight` (``kit_notebooks`` False for notebooks of one's own, which
    may read no log at all).

    >>> preflight(load_config("configs/default.yaml"), "configs/default.yaml")["purchases"] > 0  # doctest: +SKIP
    True
    """
    import polars as pl

    from segmentation_lib.config import PLAUSIBLE_YEARS
    from segmentation_lib.data.quality import read_configured
    from segmentation_lib.segment.rules import check_rules

    rc = cfg.get("rfm") or {}
    seg_map = rc.get("segment_map") or "default"
    shipped = isinstance(seg_map, str) and (PACKAGE_DIR / "segment" / "maps" / f"{seg_map}.yaml").is_file()
    if not shipped:
        # a map of the user's (the shipped ones are complete, tests/segment/test_rfm_maps.py; importing the
        # scorer costs seconds, so it happens only here)
        from segmentation_lib.segment.rfm_maps import check_segment_map, map_bins

        check_segment_map(seg_map, map_bins(rc.get("bins") or 5), source=f"{config_path}: rfm.segment_map")
    if cfg.get("rules"):
        check_rules(cfg["rules"])
    data = cfg.get("data") or {}
    if not data.get("path") and not data.get("table"):  # first: a run with no log at all says so before the rest
        span = usage_preflight(cfg, config_path, notebooks if kit_notebooks else ())
        check_text_features(cfg, config_path)
        return span
    check_text_features(cfg, config_path)  # a text clustering feature needs a declared encoding
    if not data.get("path"):  # nothing to read (notebooks of one's own that read no log)
        return {"rows": None, "purchases": None, "first": None, "last": None}
    from segmentation_lib.validate.feedback import check_feedback_sources

    check_feedback_sources(cfg)  # the declared feedback columns / events exist (validate/feedback.py)
    lf = read_configured(cfg)
    ts = pl.col("timestamp")
    plausible = ts.is_between(dt.datetime(PLAUSIBLE_YEARS[0], 1, 1, tzinfo=dt.timezone.utc),
                              dt.datetime(PLAUSIBLE_YEARS[1], 12, 31, tzinfo=dt.timezone.utc))
    buy = (pl.col("amount") > 0) & pl.col("customer_id").is_not_null()
    if "is_cancellation" in lf.collect_schema().names():
        buy = buy & ~pl.col("is_cancellation")
    span = lf.select(rows=pl.len(), purchases=buy.sum(), first=ts.filter(plausible).min(),
                     last=ts.filter(plausible).max()).collect().row(0, named=True)
    where = str(data["path"])
    if span["rows"] and not span["purchases"]:
        raise DataError(f"{where}: none of the {span['rows']:,} rows is a purchase (every amount is zero or negative, "
                        "or the row is a cancellation), so there is nothing to segment. Fix: check that "
                        "data.columns.amount is the sale amount with purchases positive (a refunds-only export, or "
                        "amounts with the sign reversed, look like this).")
    check_holdout(cfg, config_path, notebooks, span["first"], span["last"], ("transactions", "customer", "purchase", "log"))
    return span


def check_holdout(cfg: Mapping[str, Any], config_path: Path | str, notebooks: Sequence[str], first: Any, last: Any,
                  words: tuple[str, str, str, str]) -> None:
    """ConfigError when a page with a holdout (``HOLDOUT_NOTEBOOKS``) is asked for and ``validation.holdout_days``
    is not shorter than the history from ``first`` to the run's end; ``words`` name the log in the message
    (what runs, who has, what they have before the holdout, what to give longer)."""
    holdout = int((cfg.get("validation") or {}).get("holdout_days") or 0)
    if first is None or not holdout or not any(Path(str(n)).stem in HOLDOUT_NOTEBOOKS for n in notebooks):
        return
    as_of = (cfg.get("run") or {}).get("as_of")
    end = (dt.datetime.fromisoformat(str(as_of)).replace(tzinfo=dt.timezone.utc) if as_of else
           dt.datetime(last.year, last.month, last.day, tzinfo=dt.timezone.utc) + dt.timedelta(days=1))
    history = (end.date() - first.date()).days
    if history <= holdout:
        rows, who, what, log = words
        raise ConfigError(
            f"{config_path}: validation.holdout_days ({holdout}) is not shorter than the history: the {rows} "
            f"run from {first.date()} to {last.date()} and the run ends at {end.date()} ({history:,} days), so no "
            f"{who} has {'a ' if what == 'purchase' else ''}{what} before the holdout. Fix: set validation.holdout_days "
            f"below {history} (about a quarter of the history, e.g. {max(1, history // 4)}), or give a longer {log}.")


def check_text_features(cfg: Mapping[str, Any], config_path: Path | str) -> None:
    """Stop before the first notebook when a text column of the customer table (``data.customers``) is a
    clustering feature without a declared encoding (``clustering.encodings``), or an encoding names a
    column that is not a clustering feature (segmentation_lib.features.encoding).

    >>> check_text_features({"clustering": {"features": ["n_orders"]}, "data": {"customers": {"path": None}}}, "c.yaml")
    """
    cc = cfg.get("clustering") or {}
    features, encodings = list(cc.get("features") or []), dict(cc.get("encodings") or {})
    customers_path = ((cfg.get("data") or {}).get("customers") or {}).get("path")
    if not customers_path and not encodings:
        return
    from segmentation_lib.features.encoding import check_encodings, text_features

    schema: dict[str, Any] = {}
    levels: dict[str, int] = {}
    if customers_path:
        from segmentation_lib.data.read import load_customers

        customers = load_customers(cfg)
        if customers is not None:
            schema = dict(customers.schema)
            levels = {c: int(customers[c].n_unique()) for c in text_features(schema, features)}
    check_encodings(schema, features, encodings, levels=levels, where=f"{config_path}: data.customers")
def skipped_pages(cfg: Mapping[str, Any], notebooks: Sequence[str]) -> dict[str, str]:
    """The report pages of ``notebooks`` that do not apply to this run, each with the reason in words:
    the predicted-value page (05_value) of a usage-only run (``data.path`` null: no purchases to model).

    >>> skipped_pages({"data": {"path": "tx.csv"}}, DEFAULT_NOTEBOOKS)
    {}
    """
    from segmentation_lib.config import usage_only

    if not usage_only(cfg):
        return {}
    from segmentation_lib.describe.value_text import no_purchases_value_note

    return {Path(str(n)).stem: no_purchases_value_note() for n in notebooks if Path(str(n)).stem == "05_value"}


def usage_preflight(cfg: Mapping[str, Any], config_path: Path | str, notebooks: Sequence[str]) -> dict[str, Any]:
    """The preflight of a run without a transaction log (``data.path`` null): with ``data.events`` (a
    usage-only run) one lazy pass over the event log's customer and time columns, and the holdout check
    on its span; without it, a ConfigError when the report's own pages are asked for (they need a log).
    Returns the span (``purchases`` is None: the run has none) and ``skipped`` (:func:`skipped_pages`)."""
    import polars as pl

    from segmentation_lib.config import usage_only
    from segmentation_lib.data.events import load_events

    none = {"rows": None, "purchases": None, "first": None, "last": None, "skipped": {}}
    if not usage_only(cfg):
        if any(Path(str(n)).stem in DEFAULT_NOTEBOOKS for n in notebooks):
            raise ConfigError(
                f"{config_path}: data.path is null and data.events.path is not set, so the run has nothing to "
                "segment: the report pages read a transaction log (data.path), a product-usage event log "
                "(data.events.path), or both. Fix: set data.path to the transactions, or data.events.path to the "
                "event log for a usage-only run (configs/saas_usage_only.yaml is an example).")
        return none
    ts = pl.col("timestamp")
    span = load_events(cfg).select(rows=pl.len(), first=ts.min(), last=ts.max()).collect().row(0, named=True)
    span = {**span, "purchases": None, "skipped": skipped_pages(cfg, notebooks)}
    check_holdout(cfg, config_path, notebooks, span["first"], span["last"], ("events", "account", "activity", "event log"))
    return span


def record_notes(run_dir: Path) -> dict[str, list[str]]:
    """The pages' run notes (the library warnings each page showed) gathered into ``metrics.json`` under
    ``notes``, by page; the pages leave them in ``work/notes_<page>.json``. Returns them."""
    from segmentation_lib.report.files import read_json

    notes = {p.stem.removeprefix("notes_"): read_json(p) for p in sorted((run_dir / WORK_DIR).glob("notes_*.json"))}
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        data = read_json(metrics)
        data["notes"] = {page: list(dict.fromkeys(msgs)) for page, msgs in notes.items() if msgs}
        write_json(metrics, data)
    return notes


def run_pipeline(
    config_path: str | Path,
    out_dir: str | Path | None = None,
    progress: bool = True,
    *,
    notebooks: Sequence[str] | None = None,
    notebooks_dir: str | Path | None = None,
    kernel_name: str | None = None,
    timeout: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    reference: str | Path | None = None,
    compare_to: str | Path | None = None,
) -> Path:
    """Run the report notebooks for one configuration; return the path of the run's ``index.html``.

    ``out_dir`` defaults to ``report.out_dir`` of the configuration. ``notebooks`` /
    ``notebooks_dir`` override ``report.notebooks`` and the notebooks folder (tests use tiny ones).
    ``reference`` (an earlier run folder: score with its frozen model, edges, map and rules) and
    ``compare_to`` (the run "Since last run" compares with) override ``run.reference`` / ``run.compare_to``.
    Raises PipelineError (exit code 1) naming the notebook and cell when a notebook fails; the
    executed notebook is then kept in ``<out_dir>/failed-<stamp>_<id>/``. ``overrides`` (a nested
    mapping, e.g. the command line's ``--data`` / ``--as-of`` / ``--seed``) apply on top of the
    file: the notebooks then read the effective configuration written to ``run_config.yaml`` in the
    run folder, and the manifest lists the overrides.

    >>> run_pipeline("configs/default.yaml", out_dir="reports")  # doctest: +SKIP
    PosixPath('reports/2024-05-01_093000_1a2b3c4d/index.html')
    """
    from segmentation_lib.report import html as report
    from segmentation_lib.report.progress import step
    from segmentation_lib.config import dump_config, load_config, usage_only

    config_path = Path(config_path).resolve()
    cfg = load_config(config_path, overrides=overrides)
    check_inputs(cfg, config_path)
    rep = cfg.get("report") or {}
    if not isinstance(rep.get("keep_work", False), bool):
        raise ConfigError(f"{config_path}: report.keep_work is {rep.get('keep_work')!r}. Fix: set it to true (keep the "
                          "work/ hand-off files in the finished run) or false.")
    out = Path(out_dir if out_dir is not None else rep.get("out_dir") or "reports").resolve()
    names = list(notebooks if notebooks is not None else rep.get("notebooks") or DEFAULT_NOTEBOOKS)
    preflight(cfg, config_path, names, kit_notebooks=notebooks_dir is None)
    skipped = skipped_pages(cfg, names)  # e.g. the value page of a usage-only run: said here and on the index
    for name, reason in skipped.items():
        print(f"Skipping {name}: {reason}", file=sys.stderr)
    names = [n for n in names if Path(str(n)).stem not in skipped]
    nb_folder = Path(notebooks_dir).resolve() if notebooks_dir else notebook_dir()
    paths = resolve_notebooks(names, nb_folder)
    kernel = kernel_name or ensure_kernel()
    from segmentation_lib.report.history import LINKS_FILE, append_history, resolve_links

    links = resolve_links(cfg, out, reference, compare_to)  # checked before any notebook runs

    started = dt.datetime.now(dt.timezone.utc)
    run_id = uuid.uuid4().hex[:8]
    final_name, failed_name = run_names(started, run_id)
    out.mkdir(parents=True, exist_ok=True)
    cleaned = remove_leftovers(out)  # what killed runs left (customer data in their work/ folders)
    if cleaned:
        print(leftovers_message(cleaned), file=sys.stderr)
    tmp = out / f"{TMP_PREFIX}{run_id}"
    tmp.mkdir()
    try:
        write_owner(tmp)  # pid, host: lets the next run (or `segment clean`) tell a killed run's folder from a live one
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_json(tmp / LINKS_FILE, {**links, "run": final_name})
    nb_config = config_path
    if overrides:  # the notebooks read the file: give them the configuration with the overrides applied
        nb_config = tmp / RUN_CONFIG
        nb_config.write_text(dump_config(cfg), encoding="utf-8")
    params = {"config_path": str(nb_config), "run_dir": str(tmp), "seed": int(cfg["run"]["seed"]),
              "run_id": run_id}
    timings: dict[str, float] = {}
    stage_times: dict[str, list[dict[str, Any]]] = {}  # per notebook: its stages' seconds and peak memory
    current = None
    try:
        with _sigterm_as_interrupt(), _kernel_env({"SEGMENTATION_RUN_ID": run_id}), _warm_kernels() as warm:
            for i, src in enumerate(paths, 1):
                current = src.stem
                t0 = dt.datetime.now(dt.timezone.utc)
                with step(f"report {i}/{len(paths)}: {current}", enabled=progress):
                    if not warm:
                        warm.append(WarmKernel(kernel, nb_folder))
                    this = warm.pop(0)
                    km = this.take()
                    if i < len(paths):  # the next notebook's kernel starts while this one runs
                        warm.append(WarmKernel(kernel, nb_folder))
                    try:
                        _run_notebook(src, tmp / src.name, params, kernel, nb_folder, timeout, km)
                    except BaseException:
                        this.shutdown(now=not isinstance(sys.exc_info()[1], PipelineError))  # interrupted: killed
                        raise
                    this.shutdown(now=False)
                timings[current] = round((dt.datetime.now(dt.timezone.utc) - t0).total_seconds(), 2)
                stage_times[current] = [{"stage": "kernel start (not overlapped)", "seconds": round(this.waited, 3)},
                                        *take_stage_times(tmp / WORK_DIR)]
        record_notes(tmp)
        current = "rendering"
        pages = []
        for src in paths:
            html = tmp / f"{src.stem}.html"
            if usage_only(cfg):  # no purchases: the notebook's own headings in usage words too
                report.usage_worded_notebook(tmp / src.name)
            report.notebook_to_html(tmp / src.name, html, nav=[(p.stem, f"{p.stem}.html") for p in paths])
            pages.append(html)
        if rep.get("keep_work") is not True:  # report.keep_work: the hand-off files stay for re-running one notebook
            shutil.rmtree(tmp / WORK_DIR, ignore_errors=True)
        (tmp / OWNER_FILE).unlink(missing_ok=True)
        finished = dt.datetime.now(dt.timezone.utc)
        manifest = {
            "run_id": run_id,
            "folder": final_name,
            "started": started.isoformat(),
            "finished": finished.isoformat(),
            "seconds": round((finished - started).total_seconds(), 2),
            "notebook_seconds": timings,
            "stage_seconds": stage_times,
            "config_file": str(config_path),
            "config_sha256": sha256_file(config_path),
            "config_overrides": json.loads(json.dumps(dict(overrides or {}), default=json_default)),
            "configuration": json.loads(json.dumps({k: v for k, v in cfg.items() if not str(k).startswith("_")},
                                                   default=json_default)),
            "configuration_yaml": dump_config(cfg),
            "inputs": fingerprint(cfg),
            "row_counts": report.row_counts(tmp),
            "as_of": report.as_of_of_run(tmp),
            "versions": library_versions(),
            "git_revision": git_revision(),
            "kernel": kernel,
            "notebooks": [p.name for p in paths],
            "skipped_notebooks": skipped,
            "files": sorted(p.name for p in tmp.iterdir() if p.is_file() and p.name != "manifest.json")
            + ["index.html", "manifest.json"],
            "sha256": file_hashes(tmp),  # load_model checks model.joblib against this record
        }
        write_json(tmp / "manifest.json", manifest)
        report.render_run_index(tmp, manifest)
        os.replace(tmp, out / final_name)
        append_history(out, out / final_name)  # reports/segment_history.parquet/<run>.parquet
    except PipelineError as err:
        failed = _fail(tmp, out / failed_name, str(err))
        with contextlib.suppress(Exception):
            report.render_reports_index(out)
        kept = (f"The executed notebook with the error is kept in {failed}; earlier reports are unchanged."
                if failed else kept_sentence(None))
        err.args = (f"{err} {kept} Fix the cause named above and rerun.",)
        err.exit_code = 2 if getattr(err, "bad_input", False) else 1
        err.kept = failed
        raise
    except BaseException as exc:
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        failed = _fail(tmp, out / failed_name, f"Run {run_id} stopped during {current}: {what}")
        with contextlib.suppress(Exception):  # the command line says exactly what was kept
            exc.kept_folder, exc.stopped_during = failed, current
        with contextlib.suppress(Exception):
            report.render_reports_index(out)
        with contextlib.suppress(AttributeError, TypeError):
            exc.kept_sentence = kept_sentence(failed)  # read by the CLI's message
        raise
    report.render_reports_index(out)
    return out / final_name / "index.html"
