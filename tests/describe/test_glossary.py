"""The one glossary: every page's terms have an entry of exactly one sentence; unknown terms are a ConfigError."""
from __future__ import annotations

import pytest

from segmentation_lib.describe.glossary import GLOSSARY, PAGE_TERMS, glossary_markdown
from segmentation_lib.errors import ConfigError
from segmentation_lib.report.html import INDEX_TERMS
from segmentation_lib.report.pages import PAGES


def test_every_page_picks_known_terms_of_one_sentence() -> None:
    assert set(PAGES) <= set(PAGE_TERMS)  # every page has its terms
    for terms in [*PAGE_TERMS.values(), INDEX_TERMS]:
        assert terms and all(t in GLOSSARY for t in terms)
    for term, text in GLOSSARY.items():
        assert text[0].isupper() and text.endswith(".") and ". " not in text.rstrip("."), term
    # the terms the issue names are on the pages that show them
    assert {"recency", "RFM code"} <= set(PAGE_TERMS["rfm"]) and {"silhouette", "ARI", "holdout"} <= set(PAGE_TERMS["validation"])


def test_glossary_markdown() -> None:
    assert glossary_markdown(["ARI", "holdout", "ARI"]) == (
        "**Terms on this page.**\n"
        "- **ARI**: Adjusted Rand index: how much two segmentations of the same customers agree, 0 for chance and 1 for identical.\n"
        "- **Holdout**: The most recent period, hidden from the segmentation, used to check what customers really did next.")
    assert glossary_markdown([]) == ""
    with pytest.raises(ConfigError, match=r"no entry for \['recencyy'\]"):
        glossary_markdown(["recencyy"])
