"""Pictures of the clustering space: a 2-D PCA projection and per-segment standardised means (snake plot)."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl




def pca_projection(model: Any, features: pl.DataFrame, labels: pl.DataFrame, n: int, seed: int) -> tuple[pl.DataFrame, list[float]]:
    """2-D PCA of the model's preprocessed features on a seeded sample of ``n`` customers (labels joined)."""
    from sklearn.decomposition import PCA

    sample = features.sample(n=min(n, features.height), seed=seed, shuffle=False) if features.height > n else features
    Z = model.preprocessor_.transform(sample)
    pca = PCA(n_components=2, random_state=seed).fit(Z)
    xy = pca.transform(Z)
    coords = pl.DataFrame({"customer_id": sample["customer_id"], "pc1": xy[:, 0], "pc2": xy[:, 1]})
    return coords.join(labels, on="customer_id", how="left"), [float(v) for v in pca.explained_variance_ratio_]


def standardised_means(model: Any, features: pl.DataFrame, labels: np.ndarray, names: Mapping[int, str]) -> pl.DataFrame:
    """Snake-plot data: per segment the mean of each preprocessed (scaled) model feature."""
    Z = model.preprocessor_.transform(features)
    cols = [str(c) for c in model.preprocessor_.get_feature_names_out()] if hasattr(model.preprocessor_, "get_feature_names_out") else list(model.feature_names_in_)
    df = pl.DataFrame(Z, schema=cols, orient="row").with_columns(pl.Series("_id", labels))
    out = df.group_by("_id").agg(pl.all().mean()).sort("_id")
    return out.with_columns(pl.col("_id").replace_strict({int(k): v for k, v in names.items()}, default="Noise",
                                                         return_dtype=pl.String).alias("segment")).select("segment", *cols)
