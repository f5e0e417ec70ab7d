"""RFM segment maps as data: named segments over score cells, shipped maps, checks, assignment.

A map names cells of the R x F (or R x F x M) score grid ("Champions", "At Risk", ...). Shipped maps
live in ``segmentation_lib/segment/maps/*.yaml``; :func:`validate_segment_map` reports overlaps and
unreachable segments; :func:`assign_rfm_segments` adds ``rfm_segment`` to a scored table.

>>> import polars as pl
>>> scored = pl.DataFrame({"r_score": [5, 1], "f_score": [5, 1], "m_score": [5, 1]})
>>> assign_rfm_segments(scored)["rfm_segment"].to_list()
['Champions', 'Lost']
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from importlib import resources
from itertools import product
from pathlib import Path
from typing import Any, Mapping

import polars as pl
import yaml

from segmentation_lib.config import load_yaml
from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.segment.rfm import ALLOWED_BINS, SCORE_COLS



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
        cols = [SCORE_COLS[d] for d in _dims_of(self.dims)]
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
    text = resources.files("segmentation_lib.segment").joinpath("maps", f"{name}.yaml").read_text(encoding="utf-8")
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
        spec = load_yaml(path.read_text(encoding="utf-8"), str(path))
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


def map_bins(bins: int | Mapping[str, int]) -> int:
    """The bin count of the segment map for ``rfm.bins``: the count itself, or with a count per
    measure the largest of them (the other measures' scores are read onto that scale by
    :func:`score_on_map_scale`).

    >>> map_bins(5), map_bins({"recency": 5, "frequency": 3, "monetary": 5})
    (5, 5)
    """
    if isinstance(bins, Mapping):
        return max(int(v) for v in bins.values())
    return int(bins)


def score_on_map_scale(score: pl.Expr, bins: int, map_bins_: int) -> pl.Expr:
    """A score of ``bins`` levels read on a map written for ``map_bins_``: the centre of its bin,
    ``(s - 0.5) / bins``, placed on the map's scale, ``floor((2s - 1) * map_bins_ / (2 * bins)) + 1``.
    Equal counts leave the score as it is; 10 scores on a 5-bin map give 1-2 -> 1, ..., 9-10 -> 5
    (:func:`rescale_segment_map`'s reading); 3 scores on a 5-bin map give 1, 3, 5.

    >>> pl.select(score_on_map_scale(pl.Series([1, 2, 3]), 3, 5)).to_series().to_list()
    [1, 3, 5]
    """
    if bins == map_bins_:
        return score
    return ((2 * score.cast(pl.Int32) - 1) * map_bins_ // (2 * bins) + 1).cast(pl.Int8)

def check_segment_map(segment_map: str | Path | Mapping[str, Any] | SegmentMap, bins: int,
                      source: str = "rfm.segment_map") -> MapValidation:
    """Refuse a map that leaves score codes without a segment, has segments that can never win, or
    codes outside 1..bins (ConfigError naming them and the fix); overlaps are allowed (the first
    listed segment wins, as documented). Used before a run starts.

    >>> check_segment_map("default", 5).ok
    True
    """
    m = load_segment_map(segment_map, bins=int(bins))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = validate_segment_map(m)
    if result.gaps or result.unreachable or result.out_of_range:
        bad = MapValidation(result.map_name, result.n_codes, {}, result.gaps, result.unreachable, result.out_of_range)
        share = f" ({len(result.gaps)} of {result.n_codes} codes: their customers would get no RFM segment)" if result.gaps else ""
        raise ConfigError(
            f"{source}: {bad.summary().rstrip('.')}{share}. Fix: give every code of 1..{bins} a segment, for example "
            "by ending the map with a catch-all segment such as {name: Other, r: [1, " + str(bins) + "]} (the first "
            "listed segment wins, so it takes only the codes no earlier segment has); remove or widen the segments "
            "that never win."
        )
    return result


def _segment_lookup(table: pl.DataFrame, keys: list[str], bins: int, scores: list[pl.Expr]) -> pl.Expr:
    """The segment of each row as a lookup in a list of all ``bins ** len(keys)`` codes (what a left
    join on the score columns gives, without the join): the scores on the map's scale, 1..bins,
    make the position; a score outside 1..bins or a code in no segment gives null.

    >>> t = pl.DataFrame({"r_score": [1, 2], "rfm_segment": ["low", "high"]}, schema_overrides={"r_score": pl.Int8})
    >>> pl.select(_segment_lookup(t, ["r_score"], 2, [pl.Series([2, 1, 3])])).to_series().to_list()
    ['high', 'low', None]
    """
    segment = [c for c in table.columns if c not in keys][0]
    codes = [None] * bins ** len(keys)
    for row in table.iter_rows(named=True):  # the map's codes (at most 10**3), not the customers
        if all(1 <= row[k] <= bins for k in keys):
            codes[sum((row[k] - 1) * bins ** (len(keys) - 1 - i) for i, k in enumerate(keys))] = row[segment]
    lookup = pl.Series(segment, codes, dtype=table.schema[segment])
    at = pl.lit(0, dtype=pl.Int64)
    inside = pl.lit(True)
    for k, e in zip(keys, scores):
        v = e.cast(pl.Int64)
        at = at * bins + (v - 1)
        inside = inside & (v >= 1) & (v <= bins)
    return pl.lit(lookup).gather(pl.when(inside).then(at))


def assign_rfm_segments(
    scored: pl.DataFrame | pl.LazyFrame,
    segment_map: str | Path | Mapping[str, Any] | SegmentMap = "default",
    bins: int | Mapping[str, int] | None = None,
    segment_col: str = "rfm_segment",
) -> pl.DataFrame | pl.LazyFrame:
    """Add ``segment_col`` from the scores (``r_score, f_score[, m_score]``) via the map.

    Scores outside the map (gaps) get a null segment; on overlaps the first listed segment wins.
    ``bins`` may be a count per measure (``{"recency": 5, "frequency": 3, "monetary": 5}``): the
    map is the one for the largest count (:func:`map_bins`) and the other measures' scores are read
    on its scale by :func:`score_on_map_scale` (the score columns keep their own values).
    ``bins`` picks the shipped map for that bin count (see :func:`load_segment_map`); another map
    must be written for ``bins`` (or for a divisor of it, then it is rescaled). Without ``bins``,
    for a shipped map name, it is read off the scores (the smallest of 3, 4, 5, 10 that holds the highest score), with a
    warning when that is not 5, so 3-bin scores never meet a 5-bin map silently.

    >>> import polars as pl
    >>> s = pl.DataFrame({"r_score": [5, 1], "f_score": [5, 1], "m_score": [5, 1]})
    >>> assign_rfm_segments(s)["rfm_segment"].to_list()
    ['Champions', 'Lost']
    """
    per_measure = dict(bins) if isinstance(bins, Mapping) else None
    if per_measure is not None:
        bins = map_bins(per_measure)
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
    by_col = {"r_score": "recency", "f_score": "frequency", "m_score": "monetary"}
    on_scale = [score_on_map_scale(pl.col(c), int((per_measure or {}).get(by_col.get(c, ""), m.bins)), m.bins)
                for c in keys]
    lf = scored.lazy().with_columns(cast).with_columns(_segment_lookup(table, keys, m.bins, on_scale).alias(segment_col))
    if isinstance(scored, pl.LazyFrame):
        return lf
    out = lf.collect()
    _warn_unassigned(out, keys, segment_col, m.name)
    return out


def _warn_unassigned(out: pl.DataFrame, keys: list[str], segment_col: str, map_name: str) -> None:
    """A UserWarning (shown in the page's run notes) when scored customers fall in a code no segment names."""
    gap = pl.col(segment_col).is_null() & pl.all_horizontal(pl.col(keys).is_not_null())
    n = out.select(gap.sum()).item()
    if n:
        codes = (out.filter(gap).select(pl.concat_str([pl.col(k).cast(pl.String) for k in keys]).alias("c"))["c"]
                 .unique().sort().head(10).to_list())
        warnings.warn(f"segment map '{map_name}': {n:,} of {out.height:,} scored customers ({n / out.height:.1%}) have "
                      f"score codes no segment names (e.g. {', '.join(codes)}), so they have no RFM segment. Fix: give "
                      "every code a segment (validate_segment_map lists the gaps).", UserWarning, stacklevel=3)


def _bins_of_scores(scored: pl.DataFrame | pl.LazyFrame) -> int:
    """The bin count the score columns were made with, read off their highest value (warns unless 5).

    >>> _bins_of_scores(pl.DataFrame({"r_score": [1, 5], "f_score": [2, 4]}))
    5
    """
    schema = scored.collect_schema() if isinstance(scored, pl.LazyFrame) else scored.schema
    cols = [c for c in SCORE_COLS.values() if c in schema]
    if not cols:
        return 5
    top = scored.lazy().select(pl.max_horizontal(pl.col(cols).max())).collect().item()
    if top is None:
        return 5
    bins = next((b for b in ALLOWED_BINS if b >= int(top)), None)
    if bins is None:
        raise DataError(f"assign_rfm_segments: scores go up to {top}, more than any supported bin count "
                        f"{list(ALLOWED_BINS)}. Fix: score with RFMScorer(bins=...) and pass bins= here.")
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
