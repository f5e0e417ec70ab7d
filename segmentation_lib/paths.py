"""Where the kit's own files are: the installed package and, in a checkout, the repository.

>>> (PACKAGE_DIR / "default_config.yaml").is_file()
True
"""
from __future__ import annotations

from pathlib import Path

#: the installed ``segmentation_lib`` package folder
PACKAGE_DIR = Path(__file__).resolve().parent
#: the repository root of a checkout (the package's parent folder); in a regular install, site-packages
REPO_DIR = PACKAGE_DIR.parent
