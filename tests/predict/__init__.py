"""Tests of segmentation_lib/predict/ (a package, like every test folder: see tests/conftest.py)."""
