"""Sphinx configuration of the sklearn-corrloss documentation.

Build (from the repository root; warnings are errors, as in CI)::

    OMP_NUM_THREADS=1 sphinx-build -W --keep-going -b html docs docs/_build/html

Generated paths (not in git): ``docs/_build``, ``docs/auto_examples`` (the gallery),
``docs/generated`` (API stubs) and ``docs/gen_modules`` (gallery back-references).
``SPHINX_GALLERY_PLOT=0`` in the environment skips running the gallery examples.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

# Keep the build light on shared CI machines and free of display back-ends; set before
# torch and matplotlib are imported by autodoc or by the gallery.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the package, when it is not installed

import sklearn_corrloss

# -- Project -----------------------------------------------------------------------------------
project = "sklearn-corrloss"
author = "sklearn-corrloss developers"
copyright = "2025, sklearn-corrloss developers"
release = sklearn_corrloss.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb"]
default_role = "py:obj"
nitpicky = False

# -- autodoc / autosummary / numpydoc ----------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc "Parameters" sections carry the types
autodoc_default_options = {"member-order": "bysource"}
numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False
numpydoc_xref_param_type = False
# Every public docstring documents its parameters and return value (errors under -W).
numpydoc_validation_checks = {"GL08", "PR01", "PR02", "RT01"}
numpydoc_validation_exclude = {
    # A scorer instance (sklearn's _Scorer carries no docstring of its own); it is
    # documented by the ``#:`` comment above its assignment, as constants are.
    r"^sklearn_corrloss\.metrics\.macro_f1_scorer$",
}

# -- MyST (the user guide is Markdown) ---------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# -- matplotlib plot directive (figures computed at build time) --------------------------------
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.dpi": 110}

# -- sphinx-gallery ----------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": str(HERE / "auto_examples"),
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": str(HERE / "gen_modules" / "backreferences"),
    "doc_module": ("sklearn_corrloss",),
    # Back-references under the defining module, where the API pages live.
    "prefer_full_module": {r"sklearn_corrloss"},
    "plot_gallery": os.environ.get("SPHINX_GALLERY_PLOT", "1").lower() not in ("0", "false"),
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "download_all_examples": False,
    "write_computation_times": False,
    "matplotlib_animations": False,
    "capture_repr": ("_repr_html_", "__repr__"),
}

# -- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-corrloss {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
html_static_path: list[str] = []
html_show_sourcelink = False


# -- Completeness of the API reference -----------------------------------------------------------
def _documented(api_file: Path) -> tuple[list[str], set[int]]:
    """Modules named by ``currentmodule`` in ``api.rst`` and the objects it lists."""
    import importlib

    modules, found = [], set()
    module = None
    in_autosummary = False
    for line in api_file.read_text(encoding="utf-8").splitlines():
        current = re.match(r"\.\. currentmodule:: (\S+)", line)
        if current:
            modules.append(current.group(1))
            module = importlib.import_module(current.group(1))
            continue
        if line.startswith(".. autosummary::"):
            in_autosummary = True
            continue
        if in_autosummary:
            if not line.strip() or line.strip().startswith(":"):
                continue
            if not line.startswith(" "):
                in_autosummary = False
                continue
            obj = module
            for part in line.strip().split("."):
                obj = getattr(obj, part)
            found.add(id(obj))
    return modules, found


def check_api_reference(app) -> None:
    """Warn (an error under ``-W``) when a public name is missing from ``api.rst``.

    Public means listed in the ``__all__`` of ``sklearn_corrloss``, of
    ``sklearn_corrloss.datasets`` or of any module that ``api.rst`` documents; a name
    counts as documented when ``api.rst`` lists the same object under any module.
    """
    import importlib

    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    modules, documented = _documented(HERE / "api.rst")
    for module_name in dict.fromkeys(["sklearn_corrloss", "sklearn_corrloss.datasets", *modules]):
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            if name.startswith("__"):
                continue
            if id(getattr(module, name)) not in documented:
                logger.warning(
                    f"{module_name}.{name} is public (in __all__) but not listed in "
                    "docs/api.rst; add it to the autosummary of the module that defines it.",
                    type="corrloss",
                    subtype="api",
                )


def check_examples(app) -> None:
    """Warn (an error under ``-W``) when a documented class or function has no Examples.

    Constants (tuples, dicts, scorer objects, ...) are documented by a ``#:`` comment and
    are exempt.
    """
    import importlib
    import inspect

    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    module = None
    in_autosummary = False
    for line in (HERE / "api.rst").read_text(encoding="utf-8").splitlines():
        current = re.match(r"\.\. currentmodule:: (\S+)", line)
        if current:
            module = importlib.import_module(current.group(1))
        elif line.startswith(".. autosummary::"):
            in_autosummary = True
        elif in_autosummary and line.strip() and not line.strip().startswith(":"):
            if not line.startswith(" "):
                in_autosummary = False
                continue
            obj = getattr(module, line.strip())
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not re.search(r"^Examples\n-+$", inspect.getdoc(obj) or "", re.MULTILINE):
                logger.warning(
                    f"{module.__name__}.{line.strip()} has no Examples section in its "
                    "docstring; every public class and function shows one.",
                    type="corrloss",
                    subtype="examples",
                )


_FOREIGN_MODULES = ("sklearn.", "skorch.", "torch", "imblearn.")


def skip_foreign_members(app, what, name, obj, skip, options):
    """Leave out members that other libraries define and document for their own site.

    scikit-learn generates ``set_{method}_request`` and ``set_output`` on every estimator and
    skorch and torch add helpers; their docstrings point into those projects' docs. The
    package's own overrides (e.g. ``MultiLabelNet.get_metadata_routing``) stay.
    """
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and module.startswith(_FOREIGN_MODULES):
        return True
    return skip


def setup(app):
    app.connect("builder-inited", check_api_reference)
    app.connect("builder-inited", check_examples)
    app.connect("autodoc-skip-member", skip_foreign_members)
