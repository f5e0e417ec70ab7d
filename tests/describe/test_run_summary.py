"""segmentation_lib.describe.run_summary: the run's summary text follows the settings."""
from __future__ import annotations

from segmentation_lib.describe.run_summary import summary_text


def test_summary_text_wording_follows_the_settings() -> None:
    m = {"customers": 1000, "transactions": 5000, "as_of": "2024-01-01", "n_clusters": 5, "algorithm": "hdbscan",
         "n_rfm_segments": 11, "silhouette": 0.3, "stability_ari_median": 0.7, "predictive_clusters": 0.1,
         "predictive_rfm": 0.4, "predictive_clusters_refit_k": 2, "outliers_flagged": 3, "validation": {}}
    text = summary_text(m)
    assert "moderately stable when refitted (median ARI 0.70)" in text  # defaults 0.75 / 0.6
    assert "show weak structure (silhouette 0.30)" in text
    assert "3 outlier customer(s) (highest net spend) were left out of fitting" in text
    assert "hdbscan found 2 segments instead of 5" in text
    m["validation"] = {"stable_threshold": 0.7, "doubtful_threshold": 0.5}
    assert "segments are stable when refitted" in summary_text(m)
    m["validation"] = {"stable_threshold": 0.9, "doubtful_threshold": 0.8}
    assert "segments are doubtful when refitted" in summary_text(m)
    m.update(outliers_flagged=0, outliers_excluded=4, predictive_clusters_refit_k=5)
    text = summary_text(m)
    assert "4 outlier customer(s) (highest net spend) were excluded from every table" in text
    assert "left out of fitting" not in text and "instead of" not in text
