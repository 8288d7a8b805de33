"""Fixtures of the release-tool tests.

The fixture trees under ``fixtures/`` hold their own tests and notebooks: never collect
them here. Tests always work on a copy of a fixture tree in ``tmp_path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The test modules import kit_helpers by name; this works in every pytest import mode.
sys.path.insert(0, str(Path(__file__).parent))

from kit_helpers import copy_fixture, make_git_repo

collect_ignore_glob = ["fixtures/*"]


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A private copy of the fixture solution tree (not a git repository)."""
    return copy_fixture(tmp_path / "solution")


@pytest.fixture
def git_src(src: Path) -> Path:
    """The fixture copy as a git repository on ``main`` with one commit, clean."""
    return make_git_repo(src)
