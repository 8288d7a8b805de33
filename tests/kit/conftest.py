"""Fixtures of the release-tool tests.

The fixture trees under ``fixtures/`` hold their own tests and notebooks: never collect
them here. Tests always work on a copy of a fixture tree in ``tmp_path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The test modules import kit_helpers by name; this works in every pytest import mode.
sys.path.insert(0, str(Path(__file__).parent))

from kit_helpers import git_src, src  # noqa: F401  (fixtures)

collect_ignore_glob = ["fixtures/*"]
