"""The safety suite (issue 9): careless and unlucky use of the kit, one test per case.

The release cases reuse the fixture solution tree and helpers of ``tests/kit``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

KIT_TESTS = Path(__file__).resolve().parents[1] / "kit"
sys.path.insert(0, str(KIT_TESTS))

from kit_helpers import copy_fixture, make_git_repo  # noqa: E402


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A private copy of the fixture solution tree (not a git repository)."""
    return copy_fixture(tmp_path / "solution")


@pytest.fixture
def git_src(src: Path) -> Path:
    """The fixture copy as a git repository on ``main`` with one commit, clean."""
    return make_git_repo(src)
