"""Where the repository's data lives: recipes, classifiers, licence tables and the sample crawl.

curate is installed in editable mode from its checkout (``make venv``), so these are paths in the repo.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PIPELINES_DIR = REPO_ROOT / "pipelines"
DEFAULT_RECIPE = PIPELINES_DIR / "default.toml"
CLASSIFIERS_DIR = REPO_ROOT / "classifiers"
LICENSES_DIR = REPO_ROOT / "licenses"
SAMPLE_DIR = REPO_ROOT / "sample"
PACKAGE_DATA_DIR = Path(__file__).resolve().parent / "data"  # data that ships inside the package
CRAWL_CALENDAR = PACKAGE_DATA_DIR / "crawl_calendar.csv"
