"""Save, load and apply a fitted segmentation: one model file that loads without running code.

File format (``FORMAT_VERSION`` 2): a skops archive (``skops.io.dump``, a zip of JSON and arrays) of
the dict

``{"format": "segmentation_lib.model", "format_version": 2, "metadata": {...}, "model": CustomerSegmenter}``

where ``metadata`` holds ``created`` (ISO-8601 UTC), ``versions`` (python, segmentation-kit,
scikit-learn, numpy, polars, joblib, hdbscan), ``algorithm``, ``params`` (``get_params()``),
``feature_names``, ``segment_names``, ``n_segments``, ``noise_share``, ``training_fingerprint``
(see ``data_fingerprint``) and ``extra`` (anything JSON-like the caller adds). The fitted
preprocessing pipeline is inside the model. The per-training-customer arrays (``labels_``,
``is_noise_``, ``sample_index_``) are not saved.

Which files are loaded (``load_model``):

- the file's SHA-256 must be the one recorded in ``manifest.json`` beside it (``sha256`` ->
  file name). ``save_model`` records it there and a run's manifest lists every file of the run; a
  file without a record, or changed since, is refused with :class:`ModelError` unless
  ``trust_model=True`` (``segment score --trust-model``: only for files you made yourself);
- a format-2 file is read by skops and only the kit's own types (:data:`TRUSTED_TYPES`) are
  accepted, so even a hostile file cannot run code on load;
- a format-1 file (a joblib pickle, written by older versions of the kit) can run code when
  loaded: it is opened only with ``trust_model=True``, whatever its manifest says (a manifest
  can be forged beside a forged file); ``save_model(load_model(p, trust_model=True), p)``
  converts it to format 2;
- random bytes, truncated or bit-flipped files give a one-paragraph ModelError.

Loading a file saved with other library versions warns (``ModelVersionWarning``) naming each
difference; a newer-format file raises ModelError. Files saved before ``model_`` was an estimator
for every algorithm load into the equivalent ``NearestCentroidAssigner`` / ``HDBSCANAssigner``.

>>> save_model(segmenter, "model.joblib", training_fingerprint=data_fingerprint(features))  # doctest: +SKIP
>>> score_customers(load_model("model.joblib"), new_features).columns  # doctest: +SKIP
['customer_id', 'segment', 'segment_name', 'is_noise', 'status']
"""
from __future__ import annotations

from typing import Sequence

import copy
import hashlib
import io
import json
import os
import platform
import uuid
import warnings
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import polars as pl

from segmentation_lib.errors import DataError, ModelError


FORMAT_NAME = "segmentation_lib.model"
#: fitted attributes with one entry per training customer, left out of the saved file
TRAINING_ROW_ATTRS = ("labels_", "is_noise_", "sample_index_")
FORMAT_VERSION = 2


class ModelVersionWarning(UserWarning):
    """A model file was saved with library versions that differ from the installed ones."""


#: libraries whose versions a saved model records and checks on load
MODEL_LIBRARIES = ("segmentation-kit", "scikit-learn", "numpy", "polars", "joblib", "hdbscan", "scipy", "skops")


def library_versions(names: Sequence[str] = MODEL_LIBRARIES) -> dict[str, str]:
    """Python's and the given distributions' versions (``"missing"`` when not installed).

    >>> library_versions(("polars",))["polars"] != "missing"
    True
    """
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in names:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "missing"
    return out


def data_fingerprint(df: pl.DataFrame | pl.LazyFrame) -> str:
    """SHA-256 over the column names, dtypes, row count and polars row hashes of ``df``.

    Identical tables give identical fingerprints with the same polars version (row hashing is
    not guaranteed stable across polars versions).

    >>> a = pl.DataFrame({"x": [1, 2]})
    >>> data_fingerprint(a) == data_fingerprint(pl.DataFrame({"x": [1, 2]}))
    True
    >>> data_fingerprint(a) == data_fingerprint(pl.DataFrame({"x": [2, 1]}))
    False
    """
    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    h = hashlib.sha256()
    h.update(repr([(c, str(t)) for c, t in df.schema.items()]).encode())
    h.update(str(df.height).encode())
    if df.height:
        h.update(df.hash_rows(seed=0).to_numpy().tobytes())
    return h.hexdigest()


def _check_fitted(segmenter: Any) -> None:
    if not hasattr(segmenter, "label_order_") or not hasattr(segmenter, "preprocessor_"):
        raise ModelError(f"Cannot save {type(segmenter).__name__}: it is not fitted. "
                         "Fix: call .fit(features) before save_model.")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, streamed in 1 MiB chunks (constant memory).

    >>> sha256_file(__file__) == sha256_file(__file__)
    True
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


#: the file beside a model that records its SHA-256 (a run's manifest.json: ``{"sha256": {name: hash}}``)
MANIFEST_NAME = "manifest.json"

#: the types a model file may hold besides skops' defaults (numpy, scikit-learn): the kit's own
#: estimators and what an HDBSCAN model holds; anything else in a file is refused before loading
TRUSTED_TYPES = (
    "segmentation_lib.segment.clustering.CustomerSegmenter",
    "segmentation_lib.segment.clustering.NearestCentroidAssigner",
    "segmentation_lib.segment.clustering.HDBSCANAssigner",
    "segmentation_lib.segment.preprocessing.ColumnSelector",
    "segmentation_lib.segment.preprocessing.Log1pTransformer",
    "segmentation_lib.segment.preprocessing.QuantileClipper",
    "segmentation_lib.segment.preprocessing._NamedScaler",
    "segmentation_lib.segment.rfm.RFMScorer",
    "segmentation_lib.features.encoding.AttributeEncoder",     # clustering.encodings (text features)
    "segmentation_lib.segment.preprocessing.EncodedPipeline",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "hdbscan.hdbscan_.HDBSCAN",
    "hdbscan.prediction.PredictionData",
    "hdbscan.dist_metrics.EuclideanDistance",
    "joblib.memory.Memory",
)

TRUST_HINT = ("If you made this file yourself (and only then), pass --trust-model to `segment score` "
              "(trust_model=True in Python).")


def recorded_sha256(path: str | Path) -> str | None:
    """The SHA-256 recorded for ``path`` in ``manifest.json`` of its folder, or None.

    >>> recorded_sha256("no-such-folder/model.joblib") is None
    True
    """
    path = Path(path)
    try:
        manifest = json.loads((path.parent / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    hashes = manifest.get("sha256") if isinstance(manifest, dict) else None
    value = hashes.get(path.name) if isinstance(hashes, dict) else None
    return value if isinstance(value, str) else None


def record_sha256(path: str | Path) -> str:
    """Record the SHA-256 of ``path`` in ``manifest.json`` of its folder (other keys kept); returns it.

    >>> record_sha256("reports/my_model.joblib")  # doctest: +SKIP
    '3f1c...'
    """
    path = Path(path)
    digest = sha256_file(path)
    target = path.parent / MANIFEST_NAME
    try:
        manifest = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    if not isinstance(manifest, dict):
        manifest = {}
    hashes = manifest.get("sha256") if isinstance(manifest.get("sha256"), dict) else {}
    manifest["sha256"] = {**hashes, path.name: digest}
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def verify_model_file(path: str | Path, trust_model: bool = False) -> bool:
    """Check ``path`` against its recorded SHA-256; True when it matches, False when trusted without a match.

    Raises ModelError for a missing file, and (unless ``trust_model``) for a file with no recorded
    hash or one that differs from the record.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Model file '{path}' not found. Fix: pass the path of a model saved by save_model "
                         "(e.g. reports/<run>/model.joblib).")
    recorded = recorded_sha256(path)
    actual = sha256_file(path)
    if recorded == actual:
        return True
    if trust_model:
        return False
    if recorded is None:
        raise ModelError(
            f"Model file '{path}' is not recorded in {path.parent / MANIFEST_NAME}, so the kit cannot tell it is "
            "one it saved; a model file from elsewhere can carry code, so it was not opened. Fix: pass the "
            "model.joblib of a run folder (its manifest.json records the file's SHA-256), or save the model again "
            f"with save_model / `segment run`. {TRUST_HINT}")
    raise ModelError(
        f"Model file '{path}' has changed since it was saved: its SHA-256 {actual[:12]}... differs from the "
        f"{recorded[:12]}... recorded in {path.parent / MANIFEST_NAME}, so it was not opened (a damaged or "
        "replaced file). Fix: restore the file from the run folder or a backup, or rerun `segment run`. "
        f"{TRUST_HINT}")


def save_model(segmenter: Any, path: str | Path, training_fingerprint: str | None = None,
               extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``segmenter`` and its metadata to one skops file (atomically) and record its SHA-256 in
    ``manifest.json`` beside it; returns the path."""
    import skops.io as sio

    _check_fitted(segmenter)
    path = Path(path)
    meta = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "algorithm": segmenter.algorithm,
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in segmenter.get_params().items()},
        "feature_names": [str(f) for f in segmenter.feature_names_in_],
        "segment_names": {int(k): str(v) for k, v in segmenter.segment_names_.items()},
        "n_segments": int(segmenter.n_segments_),
        "noise_share": float(getattr(segmenter, "noise_share_", 0.0)),
        "training_fingerprint": training_fingerprint,
        "extra": json.loads(json.dumps(dict(extra) if extra else {}, default=str)),
    }
    slim = copy.copy(segmenter)  # per-training-row arrays are not needed to score: keep the file small
    for attr in TRAINING_ROW_ATTRS:
        if hasattr(slim, attr):
            delattr(slim, attr)
    frames = {}  # polars tables of the model (the k sweep) travel as Arrow IPC bytes: data only, no code
    for attr, value in list(vars(slim).items()):
        if isinstance(value, pl.DataFrame):
            buffer = io.BytesIO()
            value.write_ipc(buffer)
            frames[attr] = buffer.getvalue()
            delattr(slim, attr)
    payload = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "metadata": meta, "model": slim,
               "frames": frames}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        sio.dump(payload, tmp, compression=zipfile.ZIP_DEFLATED)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    record_sha256(path)
    return path


def _corrupt(path: Path, exc: BaseException) -> ModelError:
    detail = " ".join(str(exc).split())[:200]
    return ModelError(f"Model file '{path}' is corrupt or not a segmentation model ({type(exc).__name__}"
                      f"{': ' + detail if detail else ''}). Fix: save the model again with save_model / `segment run`, "
                      "or pass the model.joblib of an intact run folder.")


def _read_skops(path: Path) -> Any:
    import skops.io as sio

    untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ModelError(f"Model file '{path}' holds types the kit never saves ({', '.join(untrusted[:5])}), so it was "
                         "not loaded. Fix: pass a model file written by save_model / `segment run`.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # version differences are reported below, once, clearly
        return sio.load(path, trusted=list(TRUSTED_TYPES))


def _read_pickle(path: Path) -> Any:
    """A format-1 (joblib pickle) file; called only with trust_model (a pickle can run code)."""
    import joblib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return joblib.load(path)


def read_model_file(path: str | Path, trust_model: bool = False) -> dict[str, Any]:
    """The payload dict of a model file, after the hash check; clear errors for missing / corrupt / foreign files."""
    path = Path(path)
    verify_model_file(path, trust_model=trust_model)
    archive = zipfile.is_zipfile(path)
    if not archive and not trust_model:
        raise ModelError(
            f"Model file '{path}' is not in the kit's current model format (a skops archive): it is either damaged "
            "or an older model file (a joblib pickle, which can run code when opened), so it was not opened. Fix: "
            "rerun `segment run` to save the model in the current format. If you made this file yourself (and "
            "only then), pass --trust-model to `segment score` (trust_model=True in Python); "
            "save_model(load_model(path, trust_model=True), path) converts it.")
    try:
        payload = _read_skops(path) if archive else _read_pickle(path)
    except ModelError:
        raise
    except (Exception, MemoryError, RecursionError) as exc:  # noqa: BLE001 - any damage is a ModelError
        raise _corrupt(path, exc) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME or "model" not in payload:
        raise ModelError(f"Model file '{path}' is not a segmentation model saved by save_model. "
                         "Fix: pass a file written by save_model / `segment run`.")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelError(f"Model file '{path}' has format version {version!r}; this installation reads version "
                         f"{FORMAT_VERSION}. Fix: upgrade segmentation-kit, or refit and save the model again.")
    if not hasattr(payload["model"], "predict_selected"):
        raise ModelError(f"Model file '{path}' does not hold a fitted segmentation. "
                         "Fix: pass a file written by save_model / `segment run`.")
    try:
        for attr, data in (payload.get("frames") or {}).items():
            setattr(payload["model"], str(attr), pl.read_ipc(io.BytesIO(data)))
    except Exception as exc:  # noqa: BLE001 - a damaged table is a damaged file
        raise _corrupt(path, exc) from None
    return payload


def load_model(path: str | Path, return_metadata: bool = False, *, trust_model: bool = False) -> Any:
    """Load a model saved by ``save_model`` after checking its SHA-256 against ``manifest.json`` beside it.

    Warns (ModelVersionWarning) when library versions differ; ``trust_model=True`` opens a file
    without (or with a different) recorded hash: only for files you made yourself. The metadata
    dict is also available as ``model.metadata_``.

    >>> load_model("reports/2025-01-01_020000_1a2b3c4d/model.joblib").n_segments_  # doctest: +SKIP
    5
    """
    payload = read_model_file(path, trust_model=trust_model)
    meta = payload.get("metadata", {})
    if isinstance(meta.get("segment_names"), dict):
        meta["segment_names"] = {int(k): v for k, v in meta["segment_names"].items()}
    saved = meta.get("versions", {})
    now = library_versions()
    diffs = [f"{lib} {saved[lib]} (now {now.get(lib, 'missing')})" for lib in sorted(saved)
             if lib != "python" and saved[lib] != now.get(lib, "missing")
             and not (lib == "hdbscan" and meta.get("algorithm") != "hdbscan")]
    if diffs:
        warnings.warn(
            f"Model file '{path}' was saved with {', '.join(diffs)}. Segments may differ slightly from the "
            "run that produced it. Fix: install the saved versions, or refit and save the model again.",
            ModelVersionWarning, stacklevel=2)
    model = payload["model"]
    model.metadata_ = meta
    return (model, meta) if return_metadata else model


def score_customers(model: Any, features: pl.DataFrame | pl.LazyFrame, id_col: str = "customer_id",
                    trust_model: bool = False) -> pl.DataFrame:
    """Segment of every customer of ``features``: ``customer_id, segment, segment_name, is_noise, status``.

    ``model`` is a fitted segmenter or the path of a saved one. Every input row is returned in
    input order; a customer whose features cannot be computed (null / NaN / infinite after the
    preprocessing fill rules) gets a null segment and ``status`` naming the bad columns, e.g.
    ``"not scored: missing n_orders"``; the others get ``status == "ok"``.
    """
    if isinstance(model, (str, Path)):
        model = load_model(model, trust_model=trust_model)
    if not hasattr(model, "preprocessor_"):
        raise ModelError("score_customers needs a fitted segmenter (or the path of a saved one). "
                         "Fix: fit a CustomerSegmenter or load one with load_model.")
    if isinstance(features, pl.LazyFrame):
        features = features.collect()
    if id_col not in features.columns:
        raise DataError(f"Feature table: column '{id_col}' not found (columns: {features.columns}). "
                        "Fix: include the customer id column.")
    names = [str(f) for f in model.preprocessor_[0].get_feature_names_out()]  # encoded text features: their columns
    filled = model.preprocessor_[0].fill(features)  # clear DataError for missing / non-numeric columns
    bad = [(pl.col(f).is_null() | ~pl.col(f).is_finite()) for f in names]
    flags = filled.select(
        pl.any_horizontal(bad).alias("_bad"),
        pl.concat_list([pl.when(b).then(pl.lit(f)) for f, b in zip(names, bad)]).list.drop_nulls()
        .list.join(", ").alias("_which"),
    )
    bad_mask = flags["_bad"].to_numpy()
    good = ~bad_mask
    n = features.height
    segment = np.full(n, -1, dtype=np.int64)
    noise = np.zeros(n, dtype=bool)
    if good.any():
        raw = filled.filter(pl.Series(good)).to_numpy().astype(np.float64, copy=False)
        seg, is_noise = model.predict_selected(raw)
        segment[good] = seg
        noise[good] = is_noise
    seg_names = {int(k): str(v) for k, v in model.segment_names_.items()}
    out = pl.DataFrame({
        id_col: features[id_col],
        "segment": pl.Series("segment", segment, dtype=pl.Int64),
        "is_noise": pl.Series("is_noise", noise),
        "_bad": flags["_bad"], "_which": flags["_which"],
    })
    noise_label = (pl.col("segment") == -1) & ~pl.col("_bad")
    return out.select(
        pl.col(id_col),
        pl.when(pl.col("_bad")).then(None).otherwise(pl.col("segment")).alias("segment"),
        pl.when(pl.col("_bad")).then(None).when(noise_label).then(pl.lit("Noise"))
        .otherwise(pl.col("segment").replace_strict(seg_names, default=None, return_dtype=pl.String))
        .alias("segment_name"),
        pl.when(pl.col("_bad")).then(None).otherwise(pl.col("is_noise")).alias("is_noise"),
        pl.when(pl.col("_bad")).then(pl.lit("not scored: missing or invalid ") + pl.col("_which"))
        .otherwise(pl.lit("ok")).alias("status"),
    )
