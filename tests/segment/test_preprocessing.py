"""make_preprocessor: selection, fills, log1p, clipping, scaling, names, errors."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.segment.preprocessing import make_preprocessor


@pytest.fixture
def df() -> pl.DataFrame:
    spend = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10_000.0]  # skewed, non-negative
    return pl.DataFrame({
        "customer_id": [str(i) for i in range(10)],
        "total_spend": spend,
        "score": [-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0],  # symmetric, negative values
        "n_orders": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "label": ["a"] * 10,
    })


def test_names_flow_through_and_polars_in_numpy_out(df):
    pre = make_preprocessor(["total_spend", "score"]).fit(df)
    assert list(pre.get_feature_names_out()) == ["total_spend", "score"]
    out = pre.transform(df)
    assert isinstance(out, np.ndarray) and out.shape == (10, 2)
    # standard scaling: mean 0, std 1 on the training data
    assert np.allclose(out.mean(axis=0), 0.0) and np.allclose(out.std(axis=0), 1.0)


def test_auto_log_only_skewed_non_negative(df):
    pre = make_preprocessor(["total_spend", "score", "n_orders"], clip_quantile=None).fit(df)
    assert pre.named_steps["log1p"].log_features_ == ["total_spend"]
    logged = pre[:2].transform(df)
    assert logged[-1, 0] == pytest.approx(np.log1p(10_000.0))
    assert logged[0, 1] == -4.0  # untouched
    explicit = make_preprocessor(["total_spend", "n_orders"], log_features=["n_orders"], clip_quantile=None).fit(df)
    assert explicit.named_steps["log1p"].log_features_ == ["n_orders"]
    none = make_preprocessor(["total_spend"], log_features=None).fit(df)
    assert none.named_steps["log1p"].log_features_ == []


def test_quantile_clipping_learned_in_fit(df):
    pre = make_preprocessor(["n_orders"], log_features=None, clip_quantile=0.9).fit(df)
    clip = pre.named_steps["clip"]
    # numpy linear quantiles of 1..10: 10% -> 1.9, 90% -> 9.1
    assert clip.lower_.tolist() == pytest.approx([1.9]) and clip.upper_.tolist() == pytest.approx([9.1])
    new = pl.DataFrame({"n_orders": [0, 100]})
    assert pre[:3].transform(new).ravel().tolist() == pytest.approx([1.9, 9.1])


def test_robust_scaler_centres_on_median(df):
    pre = make_preprocessor(["n_orders"], log_features=None, clip_quantile=None, scaler="robust").fit(df)
    out = pre.transform(df).ravel()
    # median 5.5, IQR (25%..75% linear) = 7.75 - 3.25 = 4.5
    assert out[0] == pytest.approx((1 - 5.5) / 4.5)


def test_mean_days_between_of_one_time_buyers_is_their_tenure():
    df = pl.DataFrame({"mean_days_between": [None, 10.0, 20.0, float("nan")], "tenure_days": [40, 50, 60, 70],
                       "avg_order_value": [None, 5.0, 6.0, 7.0]})
    pre = make_preprocessor(["mean_days_between", "avg_order_value"], log_features=None, clip_quantile=None).fit(df)
    raw = pre[0].transform(df)
    assert raw[:, 0].tolist() == [40.0, 10.0, 20.0, 70.0]
    assert raw[:, 1].tolist() == [0.0, 5.0, 6.0, 7.0]
    # without tenure_days in the input: the training maximum
    no_tenure = make_preprocessor(["mean_days_between"], log_features=None).fit(df)
    assert no_tenure[0].transform(pl.DataFrame({"mean_days_between": [None]})).tolist() == [[20.0]]


def test_numpy_input_in_feature_order(df):
    pre = make_preprocessor(["n_orders", "score"]).fit(df)
    arr = df.select("n_orders", "score").to_numpy()
    assert np.allclose(pre.transform(arr), pre.transform(df))


def test_clone_keeps_params(df):
    pre = make_preprocessor(["n_orders"], scaler="robust")
    assert clone(pre).named_steps["scale"].scaler == "robust"


@pytest.mark.parametrize("features, kwargs, error, match", [
    ([], {}, ConfigError, "empty"),
    (["n_orders", "loyalty"], {}, DataError, r"\['loyalty'\] not found"),
    (["label"], {}, DataError, "not numeric"),
    (["n_orders", "n_orders"], {}, ConfigError, "twice"),
    (["n_orders"], {"scaler": "minmax"}, ConfigError, "scaler"),
    (["n_orders"], {"clip_quantile": 0.3}, ConfigError, "clip_quantile"),
    (["n_orders"], {"log_features": "sometimes"}, ConfigError, "log_features"),
    (["n_orders"], {"log_features": ["score"]}, ConfigError, "not clustering features"),
])
def test_bad_parameters(df, features, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_preprocessor(features, **kwargs).fit(df)


def test_constant_and_null_features(df):
    with pytest.raises(DataError, match=r"\['k'\] are constant"):
        make_preprocessor(["n_orders", "k"]).fit(df.with_columns(k=pl.lit(1.0)))
    bad = df.with_columns(pl.when(pl.col("n_orders") == 3).then(None).otherwise(pl.col("n_orders")).alias("n_orders"))
    with pytest.raises(DataError, match=r"'n_orders' \(1 rows, first at row 2\)"):
        make_preprocessor(["n_orders"]).fit(bad)
