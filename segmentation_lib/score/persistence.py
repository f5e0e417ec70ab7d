"""Save, load and apply a fitted segmentation (one joblib file with a metadata dict).

File format (``FORMAT_VERSION`` 1): ``joblib.dump`` of a dict

``{"format": "segmentation_lib.model", "format_version": 1, "metadata": {...}, "model": CustomerSegmenter}``

where ``metadata`` holds ``created`` (ISO-8601 UTC), ``versions`` (python, segmentation-kit,
scikit-learn, numpy, polars, joblib, hdbscan), ``algorithm``, ``params`` (``get_params()``),
``feature_names``, ``segment_names``, ``n_segments``, ``noise_share``, ``training_fingerprint``
(see ``data_fingerprint``) and ``extra`` (anything JSON-like the caller adds). The fitted
preprocessing pipeline is inside the model. Loading a file saved with other library versions
warns (``ModelVersionWarning``) naming each difference; a missing, corrupt or newer-format file
raises :class:`ModelError` (a ``ValueError``). The per-training-customer arrays (``labels_``,
``is_noise_``, ``sample_index_``) are not saved; the fitted ``model_`` (e.g. ``HDBSCANAssigner``)
keeps at most the fit sample (``sample_size`` rows). Files saved before ``model_`` was an
estimator for every algorithm (Ward and HDBSCAN kept a dict) load into the equivalent
``NearestCentroidAssigner`` / ``HDBSCANAssigner`` and score exactly as before.

Only load model files you trust: joblib files are pickles and can run code when loaded.

>>> save_model(segmenter, "model.joblib", training_fingerprint=data_fingerprint(features))  # doctest: +SKIP
>>> score_customers(load_model("model.joblib"), new_features).columns  # doctest: +SKIP
['customer_id', 'segment', 'segment_name', 'is_noise', 'status']
"""
from __future__ import annotations

from typing import Sequence

import copy
import hashlib
import os
import platform
import pickle
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import joblib
import numpy as np
import polars as pl

from segmentation_lib.errors import DataError, ModelError


FORMAT_NAME = "segmentation_lib.model"
#: fitted attributes with one entry per training customer, left out of the saved file
TRAINING_ROW_ATTRS = ("labels_", "is_noise_", "sample_index_")
FORMAT_VERSION = 1


class ModelVersionWarning(UserWarning):
    """A model file was saved with library versions that differ from the installed ones."""


#: libraries whose versions a saved model records and checks on load
MODEL_LIBRARIES = ("segmentation-kit", "scikit-learn", "numpy", "polars", "joblib", "hdbscan", "scipy")


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


def save_model(segmenter: Any, path: str | Path, training_fingerprint: str | None = None,
               extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``segmenter`` and its metadata to one joblib file (atomically); returns the path."""
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
        "extra": dict(extra) if extra else {},
    }
    slim = copy.copy(segmenter)  # per-training-row arrays are not needed to score: keep the file small
    for attr in TRAINING_ROW_ATTRS:
        if hasattr(slim, attr):
            delattr(slim, attr)
    payload = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "metadata": meta, "model": slim}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    joblib.dump(payload, tmp, compress=3)
    os.replace(tmp, path)
    return path


def read_model_file(path: str | Path) -> dict[str, Any]:
    """The raw payload dict of a model file, with clear errors for missing / corrupt / foreign files."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Model file '{path}' not found. Fix: pass the path of a model saved by save_model "
                         "(e.g. reports/<run>/model.joblib).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # version differences are reported below, once, clearly
            payload = joblib.load(path)
    except (EOFError, pickle.UnpicklingError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            ImportError, OSError, ModuleNotFoundError) as exc:
        raise ModelError(f"Model file '{path}' is corrupt or not a segmentation model ({type(exc).__name__}: "
                         f"{exc}). Fix: save the model again with save_model / `segment run`.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME or "model" not in payload:
        raise ModelError(f"Model file '{path}' is not a segmentation model saved by save_model. "
                         "Fix: pass a file written by save_model / `segment run`.")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelError(f"Model file '{path}' has format version {version!r}; this installation reads version "
                         f"{FORMAT_VERSION}. Fix: upgrade segmentation-kit, or refit and save the model again.")
    return payload


def load_model(path: str | Path, return_metadata: bool = False) -> Any:
    """Load a model saved by ``save_model``; warns (ModelVersionWarning) when library versions differ.

    The metadata dict is also available as ``model.metadata_``.
    """
    payload = read_model_file(path)
    meta = payload.get("metadata", {})
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


def score_customers(model: Any, features: pl.DataFrame | pl.LazyFrame, id_col: str = "customer_id") -> pl.DataFrame:
    """Segment of every customer of ``features``: ``customer_id, segment, segment_name, is_noise, status``.

    ``model`` is a fitted segmenter or the path of a saved one. Every input row is returned in
    input order; a customer whose features cannot be computed (null / NaN / infinite after the
    preprocessing fill rules) gets a null segment and ``status`` naming the bad columns, e.g.
    ``"not scored: missing n_orders"``; the others get ``status == "ok"``.
    """
    if isinstance(model, (str, Path)):
        model = load_model(model)
    if not hasattr(model, "preprocessor_"):
        raise ModelError("score_customers needs a fitted segmenter (or the path of a saved one). "
                         "Fix: fit a CustomerSegmenter or load one with load_model.")
    if isinstance(features, pl.LazyFrame):
        features = features.collect()
    if id_col not in features.columns:
        raise DataError(f"Feature table: column '{id_col}' not found (columns: {features.columns}). "
                        "Fix: include the customer id column.")
    names = [str(f) for f in model.feature_names_in_]
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
