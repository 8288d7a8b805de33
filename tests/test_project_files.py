"""The project's own files agree with each other: Python versions, packaging metadata, and
the notebooks the READMEs promise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from course.tasks import NOTEBOOKS

ROOT = Path(__file__).resolve().parent.parent
# The READMEs a student or an instructor reads first (the student one exists only in the
# solution tree, as the template the release fills in).
READMES = [p for p in (ROOT / "README.md", ROOT / "kit" / "templates" / "STUDENT_README.md")
           if p.exists()]


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; 3.10 runs the other tests
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_python_lower_bound_only():
    """One statement everywhere: 3.10 or newer (no upper bound: 3.14 is supported)."""
    assert _pyproject()["project"]["requires-python"] == ">=3.10"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "sys.version_info < (3, 10)" in makefile
    assert "needs Python 3.10 or newer" in makefile
    for readme in READMES:
        text = readme.read_text(encoding="utf-8")
        assert "Python 3.10 or newer" in text, readme.name
        assert not re.search(r"3\.1[1-9]\b|3\.10\s*(-|–|to)", text), readme.name


def test_license_is_an_spdx_string():
    """A ``{text = ...}`` table makes every install print setuptools deprecation warnings."""
    data = _pyproject()
    assert data["project"]["license"] == "MIT"
    assert any(re.fullmatch(r"setuptools>=(7[7-9]|[89]\d)(\.\d+)*", req)
               for req in data["build-system"]["requires"])


def _named_notebooks(text: str) -> set[str]:
    """Notebook names a text mentions, as ``X.ipynb`` or as a name of the course table."""
    # CamelCase file names; placeholders such as NOTEBOOK.ipynb or <Name>.ipynb are not names.
    names = set(re.findall(r"\b([A-Z][a-z][\w-]*)\.ipynb", text))
    return names | {name for name in NOTEBOOKS if re.search(rf"\b{name}\b", text)}


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.name)
def test_every_notebook_a_readme_names_exists(readme):
    for name in sorted(_named_notebooks(readme.read_text(encoding="utf-8"))):
        assert (ROOT / "notebooks" / f"{name}.ipynb").exists(), f"{readme.name} names {name}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_notebook_of_the_course_table_exists(name):
    """The student README and the site list ``course.tasks.NOTEBOOKS`` in this order."""
    assert (ROOT / "notebooks" / f"{name}.ipynb").exists()


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.name)
def test_readme_headings_are_unique(readme):
    headings = re.findall(r"^#+ .*$", readme.read_text(encoding="utf-8"), re.M)
    assert len(headings) == len(set(headings))
