"""Sphinx configuration of the edgesleep manual (Sphinx + MyST: Markdown pages, autodoc for
the API reference). Built strictly and offline: ``python -m sphinx -W --keep-going -b html
docs docs/_build`` (no intersphinx: nothing is fetched from the internet). The pages under
``_generated/`` are written by ``docs/generate.py`` before every build."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import generate  # noqa: E402

from edgesleep import __version__  # noqa: E402

project = "edgesleep"
author = "the edgesleep developers"
copyright = "2026, the edgesleep developers (MIT)"  # noqa: A001
version = release = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
napoleon_numpy_docstring = True
napoleon_google_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "furo"
html_title = f"edgesleep {__version__}"

generate.main()
