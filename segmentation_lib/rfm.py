"""Marketing RFM: edge-based scores, named segment maps (as data) and a value-engagement matrix.

Scoring (:class:`RFMScorer`) follows scikit-learn: ``fit`` learns quantile bin edges per dimension
from a reference table, ``transform`` scores any table with those edges, so identical values
always get identical scores (edges, never ranks) and frozen edges keep scheduled reports
comparable. Scores run 1..``bins``; recency (``days_since_last``) is reversed so ``bins`` = most
recent.

How edges are learned (per dimension, on the non-null values of the reference table):

1. if the column has at most ``bins`` distinct values, every distinct value is its own level
   (edges = the distinct values except the largest);
2. otherwise the inner edges are the linear-interpolated quantiles ``k / bins`` (k = 1..bins-1),
   with duplicates removed and edges >= the maximum dropped (they would only create empty top bins);
3. a value ``v`` falls in level ``#(edges < v)`` (bins are closed on the right: ``(e_k-1, e_k]``);
4. with ``L`` levels, level ``i`` gets score ``1 + round(i * (bins - 1) / (L - 1))``: when ``L ==
   bins`` this is ``i + 1``; when ``L < bins`` (ties or few distinct values) the levels are
   *spread* over 1..bins so the bottom level is 1 and the top level is ``bins`` and some scores
   are not used. This is never silent: ``degenerate_`` lists each such dimension with its levels
   and used scores, and a ``UserWarning`` is emitted. A constant column (``L == 1``) scores the
   middle score ``(bins + 1) // 2``. Null values score 1 (the worst), recency included.

>>> import polars as pl
>>> t = pl.DataFrame({"days_since_last": [1, 5, 9, 30, 200], "n_orders": [9, 5, 3, 2, 1],
...                   "total_spend": [900.0, 300.0, 120.0, 50.0, 10.0]})
>>> RFMScorer().fit_transform(t)["rfm_code"].to_list()
['555', '444', '333', '222', '111']
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from importlib import resources
from itertools import product
from pathlib import Path
from typing import Any, Mapping

import polars as pl
import yaml

from .errors import ConfigError, DataError, ModelError

__all__ = [
    "RFMScorer",
    "SegmentMap",
    "MapValidation",
    "load_segment_map",
    "validate_segment_map",
    "assign_rfm_segments",
    "value_engagement_matrix",
    "value_engagement_cuts",
    "value_engagement_summary",
    "rescale_segment_map",
    "describe_measure",
    "describe_scores",
    "describe_cut_points",
    "describe_value_engagement",
    "describe_segment_map",
    "score_ranges",
    "score_axis_labels",
    "SEGMENT_ACTIONS",
    "SHIPPED_MAPS",
    "MAP_FOR_BINS",
    "MEASURES",
    "VALUE_ENGAGEMENT_LABELS",
]

_DIMS = ("recency", "frequency", "monetary")
_SCORE_COLS = {"recency": "r_score", "frequency": "f_score", "monetary": "m_score"}
_ALLOWED_BINS = (3, 4, 5, 10)


# --------------------------------------------------------------------------------------------
# scorer
# --------------------------------------------------------------------------------------------
def _learn_edges(values: pl.Series, bins: int) -> list[float]:
    """Inner bin edges for one column (see the module docstring for the rules)."""
    v = values.drop_nulls().cast(pl.Float64)
    v = v.filter(v.is_not_nan())
    if v.len() == 0:
        return []
    distinct = v.unique().sort()
    if distinct.len() <= bins:
        return distinct.to_list()[:-1]
    top = distinct[-1]
    qs = [v.quantile(k / bins, interpolation="linear") for k in range(1, bins)]
    return sorted({float(q) for q in qs if q < top})


def _level_scores(n_levels: int, bins: int) -> list[int]:
    """Score of each level: ``1 + round(i * (bins - 1) / (L - 1))`` (spread), middle for L == 1."""
    if n_levels <= 1:
        return [(bins + 1) // 2]
    return [1 + int(round(i * (bins - 1) / (n_levels - 1))) for i in range(n_levels)]


def _score_expr(column: str, edges: list[float], scores: list[int], reverse: bool, bins: int) -> pl.Expr:
    """Polars expression: level = #(edges < value), then the level's score (reversed if asked)."""
    x = pl.col(column).cast(pl.Float64)
    level = pl.lit(0, dtype=pl.Int32)
    for e in edges:
        level = level + (x > e).cast(pl.Int32)
    table = [bins + 1 - s for s in scores] if reverse else list(scores)
    score = pl.lit(table[0], dtype=pl.Int8)
    for i in range(1, len(table)):  # a handful of levels, not rows
        score = pl.when(level == i).then(pl.lit(table[i], dtype=pl.Int8)).otherwise(score)
    return pl.when(x.is_null() | x.is_nan()).then(pl.lit(1, dtype=pl.Int8)).otherwise(score)


class RFMScorer:
    """Learn quantile edges on a reference table, then score any table with them.

    Parameters: ``bins`` (3, 4, 5 or 10), the three column names, and optionally ``edges`` (a
    dict as saved by :meth:`save_edges`, or a path to that JSON) to use frozen edges: ``fit``
    then keeps them unchanged.

    Fitted attributes: ``edges_`` ({dimension: {"column", "edges", "scores", "reverse"}}),
    ``degenerate_`` ({dimension: message} for dimensions with fewer than ``bins`` levels),
    ``n_fit_`` (rows of the reference table; None for frozen edges).

    >>> import polars as pl
    >>> t = pl.DataFrame({"days_since_last": [3, 3, 40], "n_orders": [1, 1, 1],
    ...                   "total_spend": [5.0, 5.0, 80.0]})
    >>> s = RFMScorer(bins=5).fit(t)
    >>> s.transform(t)["rfm_code"].to_list()   # ties share scores; n_orders is constant -> 3
    ['531', '531', '135']
    >>> sorted(s.degenerate_)
    ['frequency', 'monetary', 'recency']
    """

    def __init__(
        self,
        bins: int = 5,
        recency: str = "days_since_last",
        frequency: str = "n_orders",
        monetary: str = "total_spend",
        edges: Mapping[str, Any] | str | Path | None = None,
    ) -> None:
        self.bins = bins
        self.recency = recency
        self.frequency = frequency
        self.monetary = monetary
        self.edges = edges

    # -- helpers ---------------------------------------------------------------------------
    def _check_bins(self) -> int:
        if self.bins not in _ALLOWED_BINS:
            raise ConfigError(
                f"RFMScorer: bins={self.bins!r} is not supported. Fix: set rfm.bins to one of {list(_ALLOWED_BINS)}."
            )
        return int(self.bins)

    def _columns(self) -> dict[str, str]:
        return {"recency": self.recency, "frequency": self.frequency, "monetary": self.monetary}

    def _frozen(self) -> None:
        payload = self.edges
        if isinstance(payload, (str, Path)):
            payload = _read_edges_file(Path(payload))
        bins = int(payload.get("bins", self.bins))
        if bins != self.bins:
            raise ConfigError(
                f"RFMScorer: frozen edges were learned with bins={bins} but the scorer has bins={self.bins}. "
                "Fix: set rfm.bins to the value of the saved edges, or fit new edges (rfm.frozen_edges: null)."
            )
        dims = payload.get("dimensions", payload)
        edges: dict[str, dict] = {}
        for dim in _DIMS:
            if dim not in dims:
                raise ModelError(f"frozen RFM edges: dimension '{dim}' missing. Fix: save the edges again with save_edges().")
            d = dims[dim]
            edges[dim] = {
                "column": self._columns()[dim],
                "edges": [float(e) for e in d["edges"]],
                "scores": [int(s) for s in d["scores"]],
                "reverse": dim == "recency",
            }
            if d.get("column") not in (None, edges[dim]["column"]):
                warnings.warn(
                    f"frozen RFM edges for {dim} were learned on column '{d['column']}' and are applied to "
                    f"'{edges[dim]['column']}'.",
                    UserWarning,
                    stacklevel=3,
                )
        self.edges_ = edges
        self.degenerate_ = {k: m for k, m in _degenerate(edges, self.bins).items()}
        self.n_fit_ = None

    # -- sklearn API -----------------------------------------------------------------------
    def fit(self, X: pl.DataFrame | pl.LazyFrame, y: Any = None) -> "RFMScorer":
        """Learn the edges from the reference table ``X`` (or load the frozen ``edges``)."""
        bins = self._check_bins()
        if self.edges is not None:
            self._frozen()
            return self
        cols = self._columns()
        df = _frame(X, list(cols.values()), "RFMScorer.fit")
        if df.height == 0:
            raise DataError("RFMScorer.fit: the reference table is empty. Fix: fit on a table with customers.")
        edges: dict[str, dict] = {}
        for dim, col in cols.items():
            e = _learn_edges(df[col], bins)
            edges[dim] = {"column": col, "edges": e, "scores": _level_scores(len(e) + 1, bins), "reverse": dim == "recency"}
        self.edges_ = edges
        self.degenerate_ = _degenerate(edges, bins)
        self.n_fit_ = df.height
        for dim, msg in self.degenerate_.items():
            warnings.warn(f"RFMScorer: {msg}", UserWarning, stacklevel=2)
        return self

    def transform(self, X: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
        """Add ``r_score, f_score, m_score`` (Int8, 1..bins) and ``rfm_code`` to ``X``.

        ``rfm_code`` concatenates the three scores ("545"); with ``bins=10`` the scores are
        joined by ``-`` ("10-9-7") so codes stay unambiguous.
        """
        if not hasattr(self, "edges_"):
            raise ModelError("RFMScorer.transform: the scorer is not fitted. Fix: call fit() first or use RFMScorer.from_edges(path).")
        lazy = isinstance(X, pl.LazyFrame)
        names = [d["column"] for d in self.edges_.values()]
        schema = X.collect_schema() if lazy else X.schema
        missing = [c for c in names if c not in schema]
        if missing:
            raise DataError(
                f"RFMScorer.transform: column(s) {missing} not in the table (columns: {list(schema)}). "
                "Fix: compute the customer feature table first or set rfm.recency/frequency/monetary."
            )
        exprs = [
            _score_expr(d["column"], d["edges"], d["scores"], d["reverse"], self.bins).alias(_SCORE_COLS[dim])
            for dim, d in self.edges_.items()
        ]
        r, f, m = (pl.col(c) for c in _SCORE_COLS.values())
        if self.bins >= 10:
            code = pl.concat_str([r.cast(pl.String), f.cast(pl.String), m.cast(pl.String)], separator="-")
        else:  # one digit per score: "545" as the number 545 written out (one cast instead of a concat)
            code = (r.cast(pl.Int32) * 100 + f.cast(pl.Int32) * 10 + m.cast(pl.Int32)).cast(pl.String)
        return X.with_columns(exprs).with_columns(code.alias("rfm_code"))

    def fit_transform(self, X: pl.DataFrame | pl.LazyFrame, y: Any = None) -> pl.DataFrame:
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)

    # -- edges as data ---------------------------------------------------------------------
    def describe_edges(self) -> pl.DataFrame:
        """One row per (dimension, score level): ``dimension, column, level, lower, upper, score``.

        A value ``v`` gets the row's score when ``lower < v <= upper`` (null bound = unbounded).
        """
        if not hasattr(self, "edges_"):
            raise ModelError("RFMScorer.describe_edges: not fitted. Fix: call fit() first.")
        rows = []
        for dim, d in self.edges_.items():
            e = d["edges"]
            for i, s in enumerate(d["scores"]):
                rows.append({
                    "dimension": dim,
                    "column": d["column"],
                    "level": i,
                    "lower": e[i - 1] if i > 0 else None,
                    "upper": e[i] if i < len(e) else None,
                    "score": self.bins + 1 - s if d["reverse"] else s,
                })
        return pl.DataFrame(rows, schema={"dimension": pl.String, "column": pl.String, "level": pl.Int32,
                                          "lower": pl.Float64, "upper": pl.Float64, "score": pl.Int8})

    def edges_dict(self) -> dict[str, Any]:
        """The fitted edges as a JSON-ready dict (what :meth:`save_edges` writes)."""
        if not hasattr(self, "edges_"):
            raise ModelError("RFMScorer: not fitted. Fix: call fit() first.")
        return {
            "kind": "segmentation_lib.RFMScorer.edges",
            "version": 1,
            "bins": self.bins,
            "dimensions": {
                dim: {"column": d["column"], "edges": d["edges"], "scores": d["scores"]}
                for dim, d in self.edges_.items()
            },
        }

    def save_edges(self, path: str | Path) -> Path:
        """Write the fitted edges as JSON (reuse them with ``RFMScorer.from_edges(path)``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.edges_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_edges(cls, path: str | Path | Mapping[str, Any], **columns: str) -> "RFMScorer":
        """A fitted scorer with frozen edges from :meth:`save_edges` (a path or the dict).

        Column names default to the ones saved with the edges; override them by keyword.
        """
        payload = _read_edges_file(Path(path)) if isinstance(path, (str, Path)) else dict(path)
        dims = payload.get("dimensions", {})
        kw = {dim: dims.get(dim, {}).get("column") for dim in _DIMS}
        kw = {k: v for k, v in kw.items() if v}
        kw.update(columns)
        scorer = cls(bins=int(payload.get("bins", 5)), edges=payload, **kw)
        scorer._check_bins()
        scorer._frozen()
        return scorer

    def __repr__(self) -> str:
        return (f"RFMScorer(bins={self.bins}, recency={self.recency!r}, frequency={self.frequency!r}, "
                f"monetary={self.monetary!r}, edges={'frozen' if self.edges is not None else None})")


def _degenerate(edges: Mapping[str, dict], bins: int) -> dict[str, str]:
    out = {}
    for dim, d in edges.items():
        levels = len(d["edges"]) + 1
        if levels < bins:
            used = [bins + 1 - s for s in d["scores"]] if d["reverse"] else d["scores"]
            out[dim] = (
                f"{dim} ('{d['column']}') has only {levels} distinct level(s) for {bins} bins (ties or few "
                f"distinct values); levels are spread over the scores {sorted(set(used))} so the lowest and "
                f"highest levels keep the extreme scores."
            )
    return out


def _read_edges_file(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: frozen RFM edges file not found. Fix: point rfm.frozen_edges at an edges JSON "
                          "written by an earlier run, or set it to null to learn new edges.") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: not a valid edges JSON ({exc}). Fix: write it with RFMScorer.save_edges().") from None
    if not isinstance(payload, dict) or "dimensions" not in payload:
        raise ModelError(f"{path}: not an RFM edges file (no 'dimensions'). Fix: write it with RFMScorer.save_edges().")
    return payload


def _frame(X: pl.DataFrame | pl.LazyFrame, columns: list[str], where: str) -> pl.DataFrame:
    schema = X.collect_schema() if isinstance(X, pl.LazyFrame) else X.schema
    missing = [c for c in columns if c not in schema]
    if missing:
        raise DataError(
            f"{where}: column(s) {missing} not in the table (columns: {list(schema)}). Fix: compute the "
            "customer feature table with customer_features() or set rfm.recency/frequency/monetary."
        )
    if isinstance(X, pl.LazyFrame):
        return X.select(columns).collect()
    return X.select(columns)


# --------------------------------------------------------------------------------------------
# segment maps
# --------------------------------------------------------------------------------------------
@dataclass
class SegmentMap:
    """A segment map: ordered segments, each a set of score codes (tuples of ints).

    ``dims`` is ``"rfm"`` (codes over r, f, m) or ``"rf"`` (codes over r, f); ``bins`` is the
    score range 1..bins the map is written for.
    """

    name: str
    dims: str
    bins: int
    segments: list[str]
    codes: dict[str, list[tuple[int, ...]]]
    actions: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def table(self) -> pl.DataFrame:
        """``r_score, f_score[, m_score], rfm_segment`` for every code (first segment wins on overlap)."""
        seen: dict[tuple[int, ...], str] = {}
        for seg in self.segments:
            for code in self.codes[seg]:
                seen.setdefault(code, seg)
        cols = [_SCORE_COLS[d] for d in _dims_of(self.dims)]
        data: dict[str, list] = {c: [k[i] for k in seen] for i, c in enumerate(cols)}
        data["rfm_segment"] = list(seen.values())
        schema = {c: pl.Int8 for c in cols} | {"rfm_segment": pl.String}
        return pl.DataFrame(data, schema=schema)


@dataclass
class MapValidation:
    """Result of :func:`validate_segment_map`: ``ok`` when every code is covered exactly once."""

    map_name: str
    n_codes: int
    overlaps: dict[str, list[str]]  # code -> segments claiming it
    gaps: list[str]  # codes claimed by no segment
    unreachable: list[str]  # segments that own no code once earlier segments take theirs
    out_of_range: dict[str, list[str]]  # segment -> codes outside 1..bins

    @property
    def ok(self) -> bool:
        return not (self.overlaps or self.gaps or self.unreachable or self.out_of_range)

    def summary(self) -> str:
        """One paragraph describing the problems (or that the map is complete)."""
        if self.ok:
            return f"segment map '{self.map_name}': all {self.n_codes} codes covered exactly once."
        parts = []
        if self.overlaps:
            parts.append("overlapping codes " + "; ".join(f"{c}: {', '.join(s)}" for c, s in list(self.overlaps.items())[:10]))
        if self.gaps:
            parts.append(f"{len(self.gaps)} code(s) in no segment: {', '.join(self.gaps[:20])}")
        if self.unreachable:
            parts.append(f"unreachable segment(s): {', '.join(self.unreachable)}")
        if self.out_of_range:
            parts.append("codes outside the score range: " + "; ".join(f"{s}: {', '.join(c)}" for s, c in self.out_of_range.items()))
        return f"segment map '{self.map_name}': " + "; ".join(parts) + "."


def _dims_of(dims: str) -> tuple[str, ...]:
    return tuple({"r": "recency", "f": "frequency", "m": "monetary"}[ch] for ch in dims)


def _code_str(code: tuple[int, ...], bins: int) -> str:
    return ("-" if bins >= 10 else "").join(str(x) for x in code)


def _parse_code(text: Any, dims: str, bins: int, where: str) -> tuple[int, ...]:
    s = str(text).strip()
    parts = s.split("-") if "-" in s else list(s)
    if len(parts) != len(dims) or not all(p.isdigit() for p in parts):
        raise ConfigError(
            f"{where}: code {text!r} is not a {dims.upper()} code of {len(dims)} scores. Fix: write codes like "
            f"'{'5' * len(dims)}' (or '10-9-8' for 10 bins)."
        )
    return tuple(int(p) for p in parts)


def _range(spec: Any, bins: int, where: str, dim: str) -> list[int]:
    if spec is None:
        return list(range(1, bins + 1))
    if isinstance(spec, int):
        return [spec]
    if isinstance(spec, (list, tuple)) and len(spec) == 2 and all(isinstance(x, int) for x in spec):
        lo, hi = spec
        if lo > hi:
            raise ConfigError(f"{where}: range {dim}: [{lo}, {hi}] is empty (low > high). Fix: write [low, high].")
        return list(range(lo, hi + 1))
    raise ConfigError(f"{where}: range {dim}: {spec!r} is not [low, high] or a single score. Fix: e.g. {dim}: [4, 5].")


def segment_map_from_dict(spec: Mapping[str, Any], source: str = "segment map") -> SegmentMap:
    """Build a :class:`SegmentMap` from a mapping (the YAML layout; see ``maps/default.yaml``).

    Each segment has a ``name`` and either ``codes`` (list of code strings) or ranges per
    dimension (``r: [4, 5]``, ``f: [1, 2]``, ``m: 3``; an absent dimension = any score), or both.
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("segments"), list) or not spec["segments"]:
        raise ConfigError(f"{source}: a segment map needs a non-empty 'segments' list. Fix: see segmentation_lib/maps/default.yaml.")
    dims = str(spec.get("dims", "rfm")).lower()
    if dims not in ("rfm", "rf"):
        raise ConfigError(f"{source}: dims={dims!r} is not supported. Fix: use dims: rfm or dims: rf.")
    bins = int(spec.get("bins", 5))
    segments: list[str] = []
    codes: dict[str, list[tuple[int, ...]]] = {}
    actions: dict[str, str] = {}
    for i, seg in enumerate(spec["segments"]):
        where = f"{source}: segment #{i + 1}"
        if not isinstance(seg, Mapping) or not seg.get("name"):
            raise ConfigError(f"{where} has no name. Fix: give each segment a 'name'.")
        name = str(seg["name"])
        where = f"{source}: segment '{name}'"
        unknown = sorted(str(k) for k in seg if k not in {"name", "codes", "action", *dims})
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {unknown} (allowed: name, codes, action, {', '.join(dims)}). Fix: remove or "
                "rename them; quote text that holds a comma inside {...} (YAML reads 'a, b' there as two keys)."
            )
        if name in codes:
            raise ConfigError(f"{where} is listed twice. Fix: merge the two entries or rename one.")
        own: list[tuple[int, ...]] = [_parse_code(c, dims, bins, where) for c in seg.get("codes", []) or []]
        if any(k in seg for k in dims):
            ranges = [_range(seg.get(k), bins, where, k) for k in dims]
            own += list(product(*ranges))
        elif not seg.get("codes"):
            raise ConfigError(f"{where} has neither 'codes' nor ranges ({', '.join(dims)}). Fix: add one of them.")
        segments.append(name)
        codes[name] = list(dict.fromkeys(own))
        if seg.get("action"):
            actions[name] = str(seg["action"])
    return SegmentMap(str(spec.get("name", source)), dims, bins, segments, codes, actions, source)


#: names of the maps shipped in ``segmentation_lib/maps/`` (each file is ``<name>.yaml``)
SHIPPED_MAPS = ("default", "rf", "rfm3", "rf4")

#: which shipped file a map name means for each bin count (10 bins: the 5-bin map rescaled, see
#: :func:`rescale_segment_map`)
MAP_FOR_BINS: dict[str, dict[int, str]] = {
    "default": {3: "rfm3", 4: "rf4", 5: "default", 10: "default"},
    "rf": {4: "rf4", 5: "rf", 10: "rf"},
}


def _read_shipped(name: str) -> SegmentMap:
    source = f"segmentation_lib/maps/{name}.yaml"
    text = resources.files("segmentation_lib").joinpath("maps", f"{name}.yaml").read_text(encoding="utf-8")
    return segment_map_from_dict(yaml.safe_load(text), source)


def rescale_segment_map(segment_map: SegmentMap, bins: int) -> SegmentMap:
    """The map for ``bins``-bin scores when ``bins`` is a multiple of the map's own bin count.

    Score ``s`` of the finer scale reads as ``ceil(s * map.bins / bins)`` on the map's scale
    (10 bins on a 5-bin map: 1-2 -> 1, 3-4 -> 2, ..., 9-10 -> 5), so coverage is kept exactly.

    >>> m = rescale_segment_map(load_segment_map("rf"), 10)
    >>> m.bins, sum(len(c) for c in m.codes.values())
    (10, 100)
    """
    m = segment_map
    if bins == m.bins:
        return m
    if bins % m.bins:
        raise ConfigError(
            f"segment map '{m.name}' is written for {m.bins}-bin scores and cannot be used with {bins} bins "
            f"({bins} is not a multiple of {m.bins}). Fix: set rfm.bins: {m.bins}, set rfm.segment_map: default "
            f"(it has a map for 3, 4, 5 and 10 bins), or write a map for {bins} bins (ranges make that easy)."
        )
    k = bins // m.bins
    fine = {s: list(range((s - 1) * k + 1, s * k + 1)) for s in range(1, m.bins + 1)}
    codes = {seg: [c for code in m.codes[seg] for c in product(*(fine.get(x, [x]) for x in code))] for seg in m.segments}
    return SegmentMap(f"{m.name} (rescaled to {bins} bins)", m.dims, bins, list(m.segments), codes, dict(m.actions), m.source)


def load_segment_map(
    name_or_path: str | Path | Mapping[str, Any] | SegmentMap = "default", bins: int | None = None
) -> SegmentMap:
    """Load a shipped map (``"default"``, ``"rf"``, ``"rfm3"``, ``"rf4"``), a YAML file, or a mapping.

    With ``bins``, the map for that bin count: ``default`` is the 11-segment 125-code map for 5
    bins, ``rfm3`` (6 groups) for 3, ``rf4`` (9 R-F segments) for 4 and the 5-bin map rescaled
    for 10; ``rf`` likewise (4, 5, 10 bins). Any other map written for fewer bins is rescaled
    when ``bins`` is a multiple of its own, else a :class:`ConfigError` says what to do.

    >>> m = load_segment_map("default")
    >>> len(m.segments), sum(len(c) for c in m.codes.values())
    (11, 125)
    >>> load_segment_map("default", bins=3).name
    'rfm3'
    """
    if isinstance(name_or_path, SegmentMap):
        m = name_or_path
    elif isinstance(name_or_path, Mapping):
        m = segment_map_from_dict(name_or_path)
    elif str(name_or_path) in SHIPPED_MAPS:
        name = str(name_or_path)
        by_bins = MAP_FOR_BINS.get(name, {})
        if bins is not None and by_bins and int(bins) not in by_bins:
            raise ConfigError(
                f"segment map '{name}' has no version for {bins} bins (it has {sorted(by_bins)}). Fix: set "
                f"rfm.segment_map: default (3, 4, 5 or 10 bins), change rfm.bins, or write a map for {bins} bins."
            )
        m = _read_shipped(by_bins.get(int(bins), name) if bins is not None else name)
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(
                f"segment map {str(name_or_path)!r}: not a shipped map ({', '.join(SHIPPED_MAPS)}) and no such file. "
                "Fix: set rfm.segment_map to default, rf or the path of a YAML map."
            )
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc}). Fix the file.") from None
        m = segment_map_from_dict(spec, str(path))
    return m if bins is None else rescale_segment_map(m, int(bins))


def validate_segment_map(
    segment_map: str | Path | Mapping[str, Any] | SegmentMap, bins: int | None = None, strict: bool = False
) -> MapValidation:
    """Check that every code of 1..bins is covered exactly once.

    Reports overlaps (a code in several segments), gaps (a code in none), unreachable segments
    (owning no code of their own once earlier segments take theirs; assignment is first-listed
    wins) and out-of-range codes. Warns when not ok; raises :class:`ConfigError` if ``strict``
    and there are overlaps, gaps or unreachable segments.

    A shipped map name with ``bins`` is checked in its version for that bin count.

    >>> validate_segment_map("rf").ok
    True
    >>> validate_segment_map("default", bins=10).n_codes
    1000
    """
    m = load_segment_map(segment_map, bins=bins) if isinstance(segment_map, str) and segment_map in SHIPPED_MAPS \
        else load_segment_map(segment_map)
    bins = int(bins or m.bins)
    k = len(m.dims)
    universe = list(product(range(1, bins + 1), repeat=k))
    owners: dict[tuple[int, ...], list[str]] = {}
    out_of_range: dict[str, list[str]] = {}
    for seg in m.segments:
        for code in m.codes[seg]:
            if all(1 <= x <= bins for x in code):
                owners.setdefault(code, []).append(seg)
            else:
                out_of_range.setdefault(seg, []).append(_code_str(code, bins))
    overlaps = {_code_str(c, bins): s for c, s in owners.items() if len(s) > 1}
    gaps = [_code_str(c, bins) for c in universe if c not in owners]
    won = {s[0] for s in owners.values()}
    unreachable = [s for s in m.segments if s not in won]
    result = MapValidation(m.name, len(universe), overlaps, gaps, unreachable, out_of_range)
    if not result.ok:
        if strict:
            raise ConfigError(result.summary() + " Fix: make every code belong to exactly one segment.")
        warnings.warn(result.summary(), UserWarning, stacklevel=2)
    return result


def assign_rfm_segments(
    scored: pl.DataFrame | pl.LazyFrame,
    segment_map: str | Path | Mapping[str, Any] | SegmentMap = "default",
    bins: int | None = None,
    segment_col: str = "rfm_segment",
) -> pl.DataFrame | pl.LazyFrame:
    """Add ``segment_col`` from the scores (``r_score, f_score[, m_score]``) via the map.

    Scores outside the map (gaps) get a null segment; on overlaps the first listed segment wins.
    ``bins`` picks the shipped map for that bin count (see :func:`load_segment_map`); another map
    must be written for ``bins`` (or for a divisor of it, then it is rescaled). Without ``bins``,
    for a shipped map name, it is read off the scores (the smallest of 3, 4, 5, 10 that holds the highest score), with a
    warning when that is not 5, so 3-bin scores never meet a 5-bin map silently.

    >>> import polars as pl
    >>> s = pl.DataFrame({"r_score": [5, 1], "f_score": [5, 1], "m_score": [5, 1]})
    >>> assign_rfm_segments(s)["rfm_segment"].to_list()
    ['Champions', 'Lost']
    """
    if bins is None and isinstance(segment_map, str) and segment_map in MAP_FOR_BINS:
        bins = _bins_of_scores(scored)  # a shipped map name: take the one for the scores' bin count
    m = load_segment_map(segment_map, bins=bins)
    table = m.table().rename({"rfm_segment": segment_col})
    keys = [c for c in table.columns if c != segment_col]
    schema = scored.collect_schema() if isinstance(scored, pl.LazyFrame) else scored.schema
    missing = [c for c in keys if c not in schema]
    if missing:
        raise DataError(f"assign_rfm_segments: score column(s) {missing} missing. Fix: score the table with RFMScorer.transform first.")
    cast = [pl.col(c).cast(pl.Int8) for c in keys]
    if isinstance(scored, pl.LazyFrame):
        return scored.with_columns(cast).join(table.lazy(), on=keys, how="left", maintain_order="left")
    return scored.with_columns(cast).join(table, on=keys, how="left", maintain_order="left")


def _bins_of_scores(scored: pl.DataFrame | pl.LazyFrame) -> int:
    """The bin count the score columns were made with, read off their highest value (warns unless 5).

    >>> _bins_of_scores(pl.DataFrame({"r_score": [1, 5], "f_score": [2, 4]}))
    5
    """
    schema = scored.collect_schema() if isinstance(scored, pl.LazyFrame) else scored.schema
    cols = [c for c in _SCORE_COLS.values() if c in schema]
    if not cols:
        return 5
    top = scored.lazy().select(pl.max_horizontal(pl.col(cols).max())).collect().item()
    if top is None:
        return 5
    bins = next((b for b in _ALLOWED_BINS if b >= int(top)), None)
    if bins is None:
        raise DataError(f"assign_rfm_segments: scores go up to {top}, more than any supported bin count "
                        f"{list(_ALLOWED_BINS)}. Fix: score with RFMScorer(bins=...) and pass bins= here.")
    if bins != 5:
        warnings.warn(f"assign_rfm_segments: the scores go up to {top}, so they are read as {bins}-bin scores and "
                      f"the map for {bins} bins is used; pass bins= to say so explicitly.", UserWarning, stacklevel=3)
    return bins


def _default_actions() -> dict[str, str]:
    try:
        return dict(load_segment_map("default").actions)
    except Exception:  # pragma: no cover - the packaged map is always there
        return {}


#: suggested action per segment of the default map (for the RFM report)
SEGMENT_ACTIONS: dict[str, str] = _default_actions()


# --------------------------------------------------------------------------------------------
# value vs engagement
# --------------------------------------------------------------------------------------------
#: quadrant names: (high value?, high engagement?) -> label
VALUE_ENGAGEMENT_LABELS = {
    (True, True): "Champions",
    (True, False): "At Risk",
    (False, True): "Promising",
    (False, False): "Dormant",
}


def _cut_exprs(value: str, engagement: str, value_cut: float, engagement_cut: float,
               absolute: bool) -> tuple[pl.Expr, pl.Expr]:
    """The value and engagement cut points as expressions: literals, or quantiles of the columns."""
    if absolute:
        return pl.lit(float(value_cut)), pl.lit(float(engagement_cut))
    return (pl.col(value).cast(pl.Float64).quantile(float(value_cut), interpolation="linear"),
            pl.col(engagement).cast(pl.Float64).quantile(float(engagement_cut), interpolation="linear"))


def value_engagement_matrix(
    features: pl.DataFrame | pl.LazyFrame,
    value: str = "total_spend",
    engagement: str = "n_orders",
    value_cut: float = 0.5,
    engagement_cut: float = 0.5,
    absolute: bool = False,
    col: str = "value_engagement",
) -> pl.DataFrame | pl.LazyFrame:
    """Add ``col`` in {Champions, At Risk, Promising, Dormant} from a value and an engagement measure.

    "High" means strictly above the cut. By default the cuts are quantiles of the table
    (``value_cut=0.5`` = the median); with ``absolute=True`` they are values in the columns' units.
    Champions = high value & high engagement; At Risk = high value & low engagement (valuable but
    drifting); Promising = low value & high engagement; Dormant = low & low. Nulls count as low.

    >>> import polars as pl
    >>> t = pl.DataFrame({"total_spend": [10.0, 900.0, 20.0, 800.0], "n_orders": [9, 8, 1, 1]})
    >>> value_engagement_matrix(t)["value_engagement"].to_list()
    ['Promising', 'Champions', 'Dormant', 'At Risk']
    """
    schema = features.collect_schema() if isinstance(features, pl.LazyFrame) else features.schema
    for c in (value, engagement):
        if c not in schema:
            raise DataError(f"value_engagement_matrix: column '{c}' not in the table (columns: {list(schema)}). "
                            "Fix: set rfm.value_engagement.value/engagement to feature columns.")
    for name, q in (("value_cut", value_cut), ("engagement_cut", engagement_cut)):
        if not absolute and not 0.0 <= float(q) <= 1.0:
            raise ConfigError(f"value_engagement_matrix: {name}={q} is not a quantile in [0, 1]. Fix: use e.g. 0.5, or absolute=True.")
    v_cut, e_cut = _cut_exprs(value, engagement, value_cut, engagement_cut, absolute)
    hv = (pl.col(value).cast(pl.Float64) > v_cut).fill_null(False)
    he = (pl.col(engagement).cast(pl.Float64) > e_cut).fill_null(False)
    label = (
        pl.when(hv & he).then(pl.lit("Champions"))
        .when(hv).then(pl.lit("At Risk"))
        .when(he).then(pl.lit("Promising"))
        .otherwise(pl.lit("Dormant"))
    )
    return features.with_columns(label.alias(col))


def value_engagement_cuts(
    features: pl.DataFrame | pl.LazyFrame,
    value: str = "total_spend",
    engagement: str = "n_orders",
    value_cut: float = 0.5,
    engagement_cut: float = 0.5,
    absolute: bool = False,
) -> dict[str, float | None]:
    """The cut points :func:`value_engagement_matrix` uses, in the columns' units: ``{"value", "engagement"}``.

    >>> import polars as pl
    >>> value_engagement_cuts(pl.DataFrame({"total_spend": [1.0, 2.0, 9.0], "n_orders": [1, 1, 4]}))
    {'value': 2.0, 'engagement': 1.0}
    """
    if absolute:
        return {"value": float(value_cut), "engagement": float(engagement_cut)}
    v_cut, e_cut = _cut_exprs(value, engagement, value_cut, engagement_cut, absolute)
    row = features.lazy().select(v_cut.alias("value"), e_cut.alias("engagement")).collect().row(0, named=True)
    return {k: (None if v is None else float(v)) for k, v in row.items()}


def value_engagement_summary(
    table: pl.DataFrame | pl.LazyFrame, col: str = "value_engagement", revenue_col: str = "total_spend"
) -> pl.DataFrame:
    """All four quadrants (empty ones with 0): ``col, high_value, high_engagement, customers, share, revenue, revenue_share``.

    ``revenue_share`` is null when the total revenue is <= 0. Rows in the order Champions, At Risk,
    Promising, Dormant.

    >>> import polars as pl
    >>> t = pl.DataFrame({"value_engagement": ["Champions", "Champions", "Dormant"], "total_spend": [8.0, 1.0, 1.0]})
    >>> value_engagement_summary(t).select("value_engagement", "customers", "revenue_share").rows()
    [('Champions', 2, 0.9), ('At Risk', 0, 0.0), ('Promising', 0, 0.0), ('Dormant', 1, 0.1)]
    """
    schema = table.collect_schema() if isinstance(table, pl.LazyFrame) else table.schema
    missing = [c for c in (col, revenue_col) if c not in schema]
    if missing:
        raise DataError(f"value_engagement_summary: column(s) {missing} not in the table (columns: {list(schema)}). "
                        "Fix: run value_engagement_matrix first and pass a revenue column.")
    quads = pl.DataFrame({
        col: list(VALUE_ENGAGEMENT_LABELS.values()),
        "high_value": [k[0] for k in VALUE_ENGAGEMENT_LABELS],
        "high_engagement": [k[1] for k in VALUE_ENGAGEMENT_LABELS],
    })
    counts = (table.lazy().group_by(col)
              .agg(pl.len().cast(pl.Int64).alias("customers"), pl.col(revenue_col).cast(pl.Float64).sum().alias("revenue"))
              .collect())
    out = quads.join(counts, on=col, how="left", maintain_order="left").with_columns(
        pl.col("customers").fill_null(0), pl.col("revenue").fill_null(0.0))
    n, rev = int(out["customers"].sum()), float(out["revenue"].sum())
    return out.with_columns(
        (pl.col("customers") / n if n else pl.lit(None, pl.Float64)).alias("share"),
        (pl.col("revenue") / rev if rev > 0 else pl.lit(None, pl.Float64)).alias("revenue_share"),
    ).select(col, "high_value", "high_engagement", "customers", "share", "revenue", "revenue_share")


# --------------------------------------------------------------------------------------------
# plain-language descriptions (report text follows the configuration, never hard-coded)
# --------------------------------------------------------------------------------------------
#: feature column -> (what it measures, what the best score means)
MEASURES: dict[str, tuple[str, str]] = {
    "days_since_last": ("days since the last purchase", "bought most recently"),
    "n_orders": ("number of orders", "most orders"),
    "n_purchase_days": ("number of days with a purchase", "bought on the most days"),
    "total_spend": ("total net spend", "highest net spend"),
    "avg_order_value": ("average order value", "highest average order value"),
}


def describe_measure(column: str, reverse: bool = False) -> tuple[str, str]:
    """``(what the column measures, what the best score means)``; other columns read as their name.

    >>> describe_measure("n_purchase_days")
    ('number of days with a purchase', 'bought on the most days')
    >>> describe_measure("visits_90d")
    ('visits 90d', 'highest visits 90d')
    """
    if column in MEASURES:
        return MEASURES[column]
    words = column.replace("_", " ")
    return words, f"{'lowest' if reverse else 'highest'} {words}"


def _as_scorer(scorer_or_config: "RFMScorer | Mapping[str, Any]") -> "RFMScorer":
    if isinstance(scorer_or_config, RFMScorer):
        return scorer_or_config
    rc = scorer_or_config
    return RFMScorer(bins=int(rc.get("bins", 5)), recency=rc.get("recency", "days_since_last"),
                     frequency=rc.get("frequency", "n_orders"), monetary=rc.get("monetary", "total_spend"))


def _num(x: float) -> str:
    """``3`` / ``83.4`` / ``1,123``: whole numbers from 100 on, else one decimal (a trailing .0 dropped)."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}".removesuffix(".0")


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: 'a number of orders', 'an average order value'."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def describe_scores(scorer_or_config: "RFMScorer | Mapping[str, Any]") -> str:
    """One Markdown paragraph: the score range and what each dimension measures (from the scorer or ``rfm:`` config).

    >>> describe_scores({"bins": 3, "frequency": "n_purchase_days"})  # doctest: +NORMALIZE_WHITESPACE
    'Every customer is scored 1-3 on **Recency** (3 = bought most recently; days since the last purchase),
    **Frequency** (3 = bought on the most days; number of days with a purchase) and **Monetary** value
    (3 = highest net spend; total net spend), and the score combination is mapped to a named segment.'
    """
    s = _as_scorer(scorer_or_config)
    b = int(s.bins)
    parts = {}
    for dim, col in s._columns().items():
        what, best = describe_measure(col, reverse=dim == "recency")
        parts[dim] = f"({b} = {best}; {what})"
    return (f"Every customer is scored 1-{b} on **Recency** {parts['recency']}, **Frequency** {parts['frequency']} "
            f"and **Monetary** value {parts['monetary']}, and the score combination is mapped to a named segment.")


def score_ranges(scorer: "RFMScorer") -> pl.DataFrame:
    """Wide table for the report: ``score`` (best first) and, per dimension, the value range of that score.

    Columns are named ``recency: <measure>`` etc.; a range reads ``up to a``, ``over a, up to b``
    or ``over b`` (a value on an edge belongs to the lower range); null = the score is not used.

    >>> import polars as pl
    >>> t = pl.DataFrame({"days_since_last": [1, 5, 9], "n_orders": [1, 2, 3], "total_spend": [5.0, 8.0, 9.5]})
    >>> score_ranges(RFMScorer(bins=3).fit(t)).row(0)
    (3, 'up to 1', 'over 2', 'over 8')
    """
    d = scorer.describe_edges()
    lo = pl.col("lower").map_elements(_num, return_dtype=pl.String)
    hi = pl.col("upper").map_elements(_num, return_dtype=pl.String)
    d = d.with_columns(
        pl.when(pl.col("lower").is_null() & pl.col("upper").is_null()).then(pl.lit("all values"))
        .when(pl.col("lower").is_null()).then(pl.format("up to {}", hi))
        .when(pl.col("upper").is_null()).then(pl.format("over {}", lo))
        .otherwise(pl.format("over {}, up to {}", lo, hi)).alias("range"))
    names = {dim: f"{dim}: {describe_measure(c, reverse=dim == 'recency')[0]}" for dim, c in scorer._columns().items()}
    wide = d.pivot(on="dimension", index="score", values="range")
    base = pl.DataFrame({"score": list(range(int(scorer.bins), 0, -1))}, schema={"score": pl.Int8})
    out = base.join(wide, on="score", how="left", maintain_order="left")
    return out.select("score", *[pl.col(dim).alias(names[dim]) if dim in out.columns else pl.lit(None, pl.String).alias(names[dim])
                                 for dim in _DIMS])


def describe_cut_points(scorer: "RFMScorer") -> str:
    """One sentence on what the best score of each dimension takes, from the fitted edges.

    >>> import polars as pl
    >>> t = pl.DataFrame({"days_since_last": [1, 5, 9], "n_orders": [1, 2, 3], "total_spend": [5.0, 8.0, 9.5]})
    >>> describe_cut_points(RFMScorer(bins=3).fit(t))
    'A recency score of 3 means the last purchase was at most 1 day before the analysis date; a frequency score of 3 means a number of orders over 2; a monetary score of 3 means a total net spend over 8.'
    """
    if not hasattr(scorer, "edges_"):
        raise ModelError("describe_cut_points: the scorer is not fitted. Fix: call fit() first.")
    b = int(scorer.bins)
    parts = []
    for dim, d in scorer.edges_.items():
        what = describe_measure(d["column"], reverse=d["reverse"])[0]
        e = d["edges"]
        if not e:
            parts.append(f"everyone has the same {what}, so every {dim} score is {d['scores'][0]}")
        elif d["column"] == "days_since_last":
            days = e[0]
            parts.append(f"a {dim} score of {b} means the last purchase was at most {_num(days)} day{'' if days == 1 else 's'} "
                         "before the analysis date")
        elif d["reverse"]:
            parts.append(f"a {dim} score of {b} means {_a(what)} of at most {_num(e[0])}")
        else:
            parts.append(f"a {dim} score of {b} means {_a(what)} over {_num(e[-1])}")
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


def _quantile_words(q: float) -> str:
    """``0.5`` -> 'the median', ``0.75`` -> 'the upper quartile', ``0.9`` -> 'the 90th percentile'."""
    named = {0.5: "the median", 0.25: "the lower quartile", 0.75: "the upper quartile"}
    if float(q) in named:
        return named[float(q)]
    p = round(100 * float(q), 1)
    p_text = f"{p:g}"
    suffix = "th" if p_text.endswith(("11", "12", "13")) or "." in p_text else {"1": "st", "2": "nd", "3": "rd"}.get(p_text[-1], "th")
    return f"the {p_text}{suffix} percentile"


def describe_value_engagement(
    features: pl.DataFrame | pl.LazyFrame | None = None,
    summary: pl.DataFrame | None = None,
    value: str = "total_spend",
    engagement: str = "n_orders",
    value_cut: float = 0.5,
    engagement_cut: float = 0.5,
    absolute: bool = False,
    col: str = "value_engagement",
) -> str:
    """Markdown on what "high value" / "high engagement" mean (measure, cut and, with ``features``, its value).

    With ``summary`` (from :func:`value_engagement_summary`) a sentence on the At Risk quadrant follows.
    Keyword arguments are those of :func:`value_engagement_matrix` (pass ``**cfg["rfm"]["value_engagement"]``).

    >>> import polars as pl
    >>> t = pl.DataFrame({"total_spend": [10.0, 900.0, 20.0], "n_orders": [9, 8, 1]})
    >>> describe_value_engagement(t, engagement_cut=0.75)
    '**High value** means a total net spend above the median (20); **high engagement** means a number of orders above the upper quartile (8.5). A customer exactly on a cut counts as low.'
    """
    cuts = value_engagement_cuts(features, value, engagement, value_cut, engagement_cut, absolute) if features is not None \
        else ({"value": float(value_cut), "engagement": float(engagement_cut)} if absolute else None)
    sides = []
    for key, column, q in (("value", value, value_cut), ("engagement", engagement, engagement_cut)):
        what = describe_measure(column)[0]
        where = _num(float(q)) if absolute else _quantile_words(q)
        at = f" ({_num(cuts[key])})" if cuts is not None and not absolute and cuts[key] is not None else ""
        sides.append(f"{_a(what)} above {where}{at}")
    text = (f"**High value** means {sides[0]}; **high engagement** means {sides[1]}. "
            "A customer exactly on a cut counts as low.")
    if summary is not None and summary.height:
        risk = summary.filter(pl.col(col) == VALUE_ENGAGEMENT_LABELS[(True, False)])
        if risk.height and risk["customers"][0]:
            r = risk.row(0, named=True)
            share = "" if r["revenue_share"] is None else f" and hold {r['revenue_share']:.0%} of revenue"
            who = "customer has" if r["customers"] == 1 else "customers have"
            text += (f"\n\n**{r['customers']:,} high-value {who} low engagement** (At Risk: "
                     f"{describe_measure(engagement)[0]} at or below the cut){share}: the first group for a win-back campaign.")
    return text


def describe_segment_map(segment_map: "SegmentMap | str | Path | Mapping[str, Any]" = "default", bins: int | None = None) -> str:
    """One Markdown sentence on the segment map in use: its name, segments, codes and whether monetary counts.

    >>> describe_segment_map("default", bins=3)
    'Segments come from the map **rfm3**: 6 named segments over the 27 R-F-M codes of 3-bin scores; the chart shows the segment most customers in each recency x frequency cell belong to (the monetary score decides between neighbouring segments).'
    """
    m = load_segment_map(segment_map, bins=bins)
    n_codes = m.bins ** len(m.dims)
    if m.dims == "rfm":
        kind, tail = "R-F-M codes", " (the monetary score decides between neighbouring segments)"
    else:
        kind, tail = "R-F cells", " (this map uses recency and frequency only, so each cell is one segment)"
    return (f"Segments come from the map **{m.name}**: {len(m.segments)} named segments over the {n_codes:,} {kind} of "
            f"{m.bins}-bin scores; the chart shows the segment most customers in each recency x frequency cell belong to{tail}.")


def score_axis_labels(scorer_or_config: "RFMScorer | Mapping[str, Any]") -> dict[str, str]:
    """Axis labels for score charts, e.g. ``{"recency": "Recency score (5 = bought most recently)", ...}``.

    >>> score_axis_labels({"bins": 3, "frequency": "n_purchase_days"})["frequency"]
    'Frequency score (3 = bought on the most days)'
    """
    s = _as_scorer(scorer_or_config)
    return {dim: f"{dim.capitalize()} score ({s.bins} = {describe_measure(col, reverse=dim == 'recency')[1]})"
            for dim, col in s._columns().items()}
