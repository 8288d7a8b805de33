"""The project's own files agree with each other: Python versions, packaging metadata, and
the notebooks the READMEs promise."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
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


def _python_bound() -> tuple[int, int]:
    """The oldest Python the kit supports, from pyproject.toml: the one place it is set."""
    spec = _pyproject()["project"]["requires-python"]
    match = re.fullmatch(r">=(\d+)\.(\d+)", spec)
    assert match, (f"requires-python = {spec!r}: expected a lower bound only, '>=X.Y' "
                   "(no upper bound: new Pythons are supported)")
    return int(match[1]), int(match[2])


def test_python_requirement_is_a_lower_bound_only():
    assert _python_bound() >= (3, 0)


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.name)
def test_readmes_state_the_python_bound_of_pyproject(readme):
    """Every Python version a README names is pyproject's bound, said as "or newer"."""
    bound = "{}.{}".format(*_python_bound())
    text = readme.read_text(encoding="utf-8")
    stated = re.findall(r"Python (\d+\.\d+)( or newer)?", text)
    assert stated, f"{readme.name} does not say which Python it needs"
    assert stated == [(bound, " or newer")] * len(stated), (readme.name, stated)
    assert not re.search(rf"\b{re.escape(bound)}\s*(-|–|to)\s*\d", text), \
        f"{readme.name} names an upper bound"


# A stand-in interpreter: the real one pretending to be another version. It logs how it
# was called and refuses to make a venv, so the test creates nothing but a log.
_FAKE_PYTHON = """\
import sys
with open({log!r}, "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
sys.version_info = {version!r}
if sys.argv[1:2] == ["--version"]:
    print("Python {shown}")
elif sys.argv[1:2] == ["-c"]:
    sys.argv = ["-c", *sys.argv[3:]]
    exec(compile({code}, "<string>", "exec"))
else:
    sys.exit("fake python: only -c and --version")
"""


def _make_setup_with_python(tmp_path: Path, version: tuple[int, int, int]):
    """Run ``make setup`` with a Python that says it is ``version``; return the result
    and the interpreter's calls."""
    log = tmp_path / "calls.log"
    fake = tmp_path / "python3"
    fake.write_text(f"#!{sys.executable}\n" + _FAKE_PYTHON.format(
        log=str(log), version=version, shown=".".join(map(str, version)),
        code="sys.orig_argv[sys.orig_argv.index('-c') + 1]"), encoding="utf-8")
    fake.chmod(0o755)
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "setup", f"PYTHON={fake}",
         f"VENV={tmp_path / 'venv'}"], capture_output=True, text=True, timeout=120)
    return result, log.read_text(encoding="utf-8").splitlines() if log.exists() else []


@pytest.mark.skipif(shutil.which("make") is None or os.name != "posix",
                    reason="runs the Makefile (make and a POSIX shell)")
def test_make_refuses_a_python_older_than_the_bound(tmp_path):
    major, minor = _python_bound()
    result, calls = _make_setup_with_python(tmp_path, (major, minor - 1, 9))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"needs Python {major}.{minor} or newer" in output
    assert f"is Python {major}.{minor - 1}.9" in output  # says what it found
    assert not any(call.startswith("-m venv") for call in calls)  # and stops there


@pytest.mark.skipif(shutil.which("make") is None or os.name != "posix",
                    reason="runs the Makefile (make and a POSIX shell)")
def test_make_accepts_a_python_at_the_bound(tmp_path):
    major, minor = _python_bound()
    result, calls = _make_setup_with_python(tmp_path, (major, minor, 0))
    assert "needs Python" not in result.stdout + result.stderr
    # Past the version check, the set-up asked this interpreter for a venv (which the
    # stand-in refuses, so the run ends there).
    assert any(call.startswith("-m venv") for call in calls), calls


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
