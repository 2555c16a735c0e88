"""Sphinx configuration: the documentation site of gptalk-proto.

``python -m sphinx -W --keep-going -b html docs docs/_build/html`` builds it;
``tests/test_docs.py`` runs that build, warnings as errors, in the test suite.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import gptalk_proto  # noqa: E402

project = "gptalk-proto"
author = "gptalk-proto developers"
copyright = "gptalk-proto developers"
release = gptalk_proto.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinxcontrib.mermaid",
    "public_names",  # docs/_ext: the `#:` comments of re-exported constants
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"gptalk-proto {release}"

# Markdown pages (MyST): `#anchor` links to headings up to ###, and fenced
# blocks with a language are plain code blocks (```python stays a highlighted
# block, as on GitHub).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
# ```mermaid (the generated state diagram) is a diagram, as on GitHub.
myst_fence_as_directive = ["mermaid"]

# autodoc: the members of each public module's __all__, in source order; the
# signatures' annotations in the description, where they stay readable.
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# intersphinx: links to the standard library and the libraries we build on.
# The inventories are fetched over the network when the site is built, and a
# failed fetch is a warning, which -W makes an error.  The test suite and CI
# build offline, so the mapping is used only where a build says it has the
# network: on Read the Docs (which sets READTHEDOCS=True) or with
# GPTALK_DOCS_INTERSPHINX=True.  Offline, a reference to Python or anyio renders
# as plain code instead of a link (references are not nitpicky), and the build
# stays warning-free and fast.
INTERSPHINX = {
    "python": ("https://docs.python.org/3", None),
    "anyio": ("https://anyio.readthedocs.io/en/stable", None),
    "trio": ("https://trio.readthedocs.io/en/stable", None),
    "h11": ("https://h11.readthedocs.io/en/latest", None),
    "hypothesis": ("https://hypothesis.readthedocs.io/en/latest", None),
    "pytest": ("https://docs.pytest.org/en/stable", None),
}
_online = "True" in (os.environ.get("READTHEDOCS"), os.environ.get("GPTALK_DOCS_INTERSPHINX"))
intersphinx_mapping = INTERSPHINX if _online else {}
intersphinx_timeout = 10
