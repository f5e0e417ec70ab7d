"""User-facing errors.

Every error the kit raises on bad input is a :class:`SegmentationError` whose message is one
plain paragraph naming the file, the column or row, and the fix. The CLI prints the message and
exits non-zero; no traceback reaches a user for these.

``DataError``, ``ConfigError`` and ``ModelError`` are also ``ValueError``s, as scikit-learn raises
for bad input and parameters, so code written for scikit-learn (``except ValueError``, the
estimator checks) catches them too.

>>> issubclass(DataError, ValueError) and issubclass(ConfigError, SegmentationError)
True
>>> raise DataError("transactions.csv: column 'CustomerID' not found ... Fix: ...")  # doctest: +SKIP
"""
from __future__ import annotations


class SegmentationError(Exception):
    """Base class for every error meant to be read by a person (no traceback needed)."""

    exit_code = 2


class DataError(SegmentationError, ValueError):
    """The input data cannot be used as given (missing file, column, type, empty after cleaning)."""


class ConfigError(SegmentationError, ValueError):
    """The run configuration or a parameter is invalid."""


class ModelError(SegmentationError, ValueError):
    """A saved model cannot be loaded or applied."""


class PipelineError(SegmentationError):
    """A report run failed (a notebook raised); the message names the notebook and the step."""
