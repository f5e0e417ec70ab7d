"""Surrogate rules: a shallow decision tree that reproduces the segments from raw features.

It reports its fidelity, its rules in plain words and a SQL ``CASE WHEN`` a warehouse can run, so a
CRM can assign the segments without the model.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import check_is_fitted

from segmentation_lib.formatting import fmt_number
from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.segment.preprocessing import AUTO_FILLS, check_finite, fill_exprs, to_numpy
from segmentation_lib.segment.profiles import FEATURE_LABELS, labels_series, numeric_features



# --------------------------------------------------------------------------------------------
# surrogate rules
# --------------------------------------------------------------------------------------------


#: rows run down the tree at a time by ``predict`` (the temporaries stay bounded; labels do not depend on it)
PREDICT_CHUNK = 250_000


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class SurrogateRules(BaseEstimator):
    """Shallow decision tree reproducing segment labels from raw features, readable and exportable.

    Parameters are keyword-only and checked in ``fit`` (``clone`` / ``get_params`` work).

    The tree is fitted on a seeded sample of at most ``sample_size`` rows; ``predict`` evaluates
    it in float64 exactly like the SQL export (``value <= threshold`` goes left), so the SQL gives
    the same segments as ``predict``. ``fidelity_`` is the share of customers for which the tree
    reproduces the segment. Features default to the clustering features when present, with the same
    fill rules (``mean_days_between`` of one-time buyers = ``tenure_days``; ``COALESCE`` in SQL);
    other nulls are not allowed in ``fit`` and give NULL in SQL.

    Every segment gets a rule when it can: if the tree of ``max_depth`` gives some segment (with at
    least ``min_samples_leaf`` customers in the sample) no leaf, a tree at most ``extra_depth``
    levels deeper is grown best-first with no more leaves than the ``max_depth`` tree may have
    (``2 ** max_depth``, or one more than the number of segments), so the rules stay as few and
    each gains at most ``extra_depth`` conditions. ``depth_`` is the depth used, ``recall_`` the
    share of each segment's customers the rules put back in it (by segment id; ``recall_by_name()``
    by name), ``unreached_`` the segments no rule gives. Sibling leaves giving the same segment are
    written as one rule.

    >>> import polars as pl
    >>> df = pl.DataFrame({"n_orders": [1.0, 2, 8, 9], "total_spend": [5.0, 9, 80, 95]})
    >>> sr = SurrogateRules(max_depth=1).fit(df, [1, 1, 0, 0], names={0: "Loyal", 1: "Light"})
    >>> sr.fidelity_, sr.rules_text().splitlines()[0]
    (1.0, "If orders <= 5 then segment 'Light' (50.0% of customers, 100% agree)")
    """

    def __init__(self, *, max_depth: int = 3, features: Sequence[str] | None = None, min_samples_leaf: int = 20,
                 sample_size: int = 200_000, random_state: int = 42, class_weight: str | None = None,
                 extra_depth: int = 2):
        self.max_depth = max_depth
        self.features = features
        self.min_samples_leaf = min_samples_leaf
        self.sample_size = sample_size
        self.random_state = random_state
        self.class_weight = class_weight
        self.extra_depth = extra_depth

    def fit(self, features: pl.DataFrame, labels: Any, names: Mapping[int, str] | None = None) -> "SurrogateRules":
        """Grow the tree on (a sample of) ``features`` to reproduce ``labels``; ``names``: segment id -> name."""
        if not isinstance(self.max_depth, (int, np.integer)) or self.max_depth < 1:
            raise ConfigError(f"clustering.surrogate_depth must be a positive integer, got {self.max_depth!r}. Fix: use 3.")
        if isinstance(features, pl.LazyFrame):
            features = features.collect()
        if self.features is not None:
            cols = [str(c) for c in self.features]
        else:
            from segmentation_lib.segment.clustering import DEFAULT_FEATURES

            cols = list(DEFAULT_FEATURES) if set(DEFAULT_FEATURES) <= set(features.columns) else numeric_features(features)
        if not cols:
            raise DataError("SurrogateRules: the feature table has no numeric feature. Fix: pass the feature table.")
        self.fill_sources_ = {f: AUTO_FILLS[f] for f in cols if f in AUTO_FILLS
                              and (not isinstance(AUTO_FILLS[f], str) or AUTO_FILLS[f] in features.columns)}
        X = self._matrix(features, cols)
        check_finite(X, cols, "SurrogateRules feature table")
        y = labels_series(features, labels).to_numpy()
        from segmentation_lib.segment.sampling import stratified_sample

        idx = stratified_sample(X.shape[0], int(self.sample_size), None, random_state=self.random_state)
        leaf = min(int(self.min_samples_leaf), max(1, idx.size // 50))
        self.tree_, self.depth_ = self._grow(X[idx], y[idx], leaf)
        self.feature_names_in_ = np.array(cols, dtype=object)
        self.integer_features_ = [c for j, c in enumerate(cols) if np.array_equal(X[idx, j], np.round(X[idx, j]))]
        self.classes_ = self.tree_.classes_
        self.names_ = {int(c): (names or {}).get(int(c), f"Segment {int(c)}") for c in self.classes_}
        pred = self._predict_matrix(X)  # the matrix built above (predict(features) would build it again)
        del X
        self.fidelity_ = float((pred == y).mean())
        self.recall_ = {int(c): float((pred[y == c] == c).mean()) for c in self.classes_}
        self.leaves_ = self._leaves()
        reached = {leaf_["segment"] for leaf_ in self.leaves_}
        self.unreached_ = [int(c) for c in self.classes_ if int(c) not in reached]
        return self

    def _grow(self, X: np.ndarray, y: np.ndarray, leaf: int) -> tuple[DecisionTreeClassifier, int]:
        """Tree of ``max_depth``; if a segment with ``leaf`` customers gets no leaf, up to ``extra_depth``
        levels deeper with the same leaf budget. Keeps the first tree reaching every such segment
        (else the one reaching most, shallowest first)."""
        classes, counts = np.unique(y, return_counts=True)
        wanted = set(classes[counts >= leaf].tolist())
        budget = max(2 ** int(self.max_depth), classes.size + 1)
        best: tuple[int, DecisionTreeClassifier, int] | None = None
        for depth in range(int(self.max_depth), int(self.max_depth) + max(0, int(self.extra_depth)) + 1):
            tree = DecisionTreeClassifier(max_depth=depth, min_samples_leaf=leaf, random_state=self.random_state,
                                          class_weight=self.class_weight,
                                          max_leaf_nodes=None if depth == self.max_depth else budget).fit(X, y)
            t = tree.tree_
            leaf_classes = set(tree.classes_[t.value[t.children_left < 0, 0, :].argmax(axis=1)].tolist())
            missing = len(wanted - leaf_classes)
            if best is None or missing < best[0]:
                best = (missing, tree, depth)
            if missing == 0:
                break
        return best[1], best[2]

    def recall_by_name(self) -> dict[str, float]:
        """``recall_`` keyed by segment name (JSON-safe; for ``validation.actionability_checks``)."""
        check_is_fitted(self, "tree_")
        return {self.names_[c]: r for c, r in self.recall_.items()}

    def _leaf_ids(self, X: np.ndarray) -> np.ndarray:
        t = self.tree_.tree_
        node = np.zeros(X.shape[0], dtype=np.int64)
        rows = np.arange(X.shape[0])
        for _ in range(t.max_depth):  # loop over depth, vectorised over rows
            left = t.children_left[node]
            inner = left >= 0
            go_left = X[rows, np.maximum(t.feature[node], 0)] <= t.threshold[node]
            node = np.where(inner, np.where(go_left, left, t.children_right[node]), node)
        return node

    def _matrix(self, features: Any, cols: list[str]) -> np.ndarray:
        """Raw feature matrix with the clustering fill rules (one-time buyers' gap = tenure)."""
        if isinstance(features, pl.LazyFrame):
            features = features.collect()
        if isinstance(features, pl.DataFrame):
            features = features.with_columns(fill_exprs(cols, features.columns))
        return to_numpy(features, cols)

    def predict(self, features: Any) -> np.ndarray:
        """Segment of every row by the tree, evaluated in float64 (same semantics as ``to_sql``)."""
        check_is_fitted(self, "tree_")
        return self._predict_matrix(self._matrix(features, list(self.feature_names_in_)))

    def _predict_matrix(self, X: np.ndarray) -> np.ndarray:
        """Segment of every row of the filled matrix ``X``, ``PREDICT_CHUNK`` rows at a time (bounded temporaries)."""
        leaf_class = self.classes_[self.tree_.tree_.value[:, 0, :].argmax(axis=1)]
        out = np.empty(X.shape[0], dtype=leaf_class.dtype)
        chunk = int(PREDICT_CHUNK)
        for s in range(0, X.shape[0], chunk):
            out[s:s + chunk] = leaf_class[self._leaf_ids(X[s:s + chunk])]
        return out

    def _leaves(self) -> list[dict[str, Any]]:
        t = self.tree_.tree_
        total = float(t.n_node_samples[0])
        out: list[dict[str, Any]] = []
        stack: list[tuple[int, list[tuple[str, str, float]]]] = [(0, [])]
        node_class = t.value[:, 0, :].argmax(axis=1)
        single = np.ones(t.node_count, dtype=bool)  # every leaf under the node gives the same segment
        for node in range(t.node_count - 1, -1, -1):  # children have larger ids than their parent
            left, right = t.children_left[node], t.children_right[node]
            if left >= 0:
                single[node] = bool(single[left] and single[right] and node_class[left] == node_class[right])
                node_class[node] = node_class[left] if single[node] else node_class[node]
        while stack:  # walks tree nodes (at most 2**(depth+1)), not customers
            node, conds = stack.pop()
            if t.children_left[node] < 0 or single[node]:
                v = t.value[node, 0, :]
                seg = int(self.classes_[int(node_class[node])])
                out.append({"conditions": _simplify(conds), "segment": seg, "name": self.names_[seg],
                            "share": float(t.n_node_samples[node] / total), "purity": float(v[int(node_class[node])] / v.sum())})
                continue
            f = str(self.feature_names_in_[t.feature[node]])
            thr = float(t.threshold[node])
            stack.append((int(t.children_right[node]), conds + [(f, ">", thr)]))
            stack.append((int(t.children_left[node]), conds + [(f, "<=", thr)]))
        return out

    def rules_text(self) -> str:
        """One plain-language line per leaf, e.g. ``If orders > 5 and ... then segment 'X' (...)``.

        Thresholds of integer features (days, orders) are shown as whole numbers with the same
        meaning (``<= 139.5`` is shown as ``<= 139``); others are rounded for reading (the SQL is exact).
        """
        check_is_fitted(self, "tree_")
        lines = []
        for leaf in self.leaves_:
            cond = " and ".join(f"{FEATURE_LABELS.get(f, f.replace('_', ' '))} {op} "
                                f"{fmt_number(np.floor(v)) if f in self.integer_features_ else fmt_number(v)}"
                                for f, op, v in leaf["conditions"]) or "always"
            lines.append(f"If {cond} then segment '{leaf['name']}' "
                         f"({leaf['share']:.1%} of customers, {leaf['purity']:.0%} agree)")
        return "\n".join(lines)

    def case_expression(self, output: str = "segment") -> str:
        """SQL ``CASE WHEN ... END`` giving the segment id (``output="segment"``) or its name (``"name"``)."""
        check_is_fitted(self, "tree_")
        if output not in ("segment", "name"):
            raise ConfigError(f"case_expression output '{output}' is unknown. Fix: use 'segment' or 'name'.")
        whens = []
        for leaf in self.leaves_:
            cond = " AND ".join(f"{self._sql_col(f)} {op} {float(v)!r}" for f, op, v in leaf["conditions"]) or "TRUE"
            value = str(leaf["segment"]) if output == "segment" else _sql_str(leaf["name"])
            whens.append(f"  WHEN {cond} THEN {value}")
        return "CASE\n" + "\n".join(whens) + "\n  ELSE NULL\nEND"

    def _sql_col(self, f: str) -> str:
        rule = self.fill_sources_.get(f)
        if rule is None:
            return f'"{f}"'
        other = f'"{rule}"' if isinstance(rule, str) else repr(float(rule))
        return f'COALESCE("{f}", {other})'

    def to_sql(self, table: str = "customer_features", id_col: str = "customer_id") -> str:
        """A ``SELECT`` a warehouse can run: ``id_col, segment, segment_name`` for every row of ``table``."""
        return (f'SELECT "{id_col}",\n{self.case_expression("segment")} AS segment,\n'
                f'{self.case_expression("name")} AS segment_name\nFROM {table}')


def _simplify(conds: list[tuple[str, str, float]]) -> list[tuple[str, str, float]]:
    """Keep the tightest bound per feature and direction, in first-seen order."""
    best: dict[tuple[str, str], float] = {}
    for f, op, v in conds:
        key = (f, op)
        if key not in best:
            best[key] = v
        else:
            best[key] = min(best[key], v) if op == "<=" else max(best[key], v)
    return [(f, op, best[(f, op)]) for f, op in best]
