"""The safety suite (issue 9): careless and unlucky use of the kit, one test per case.

The release cases reuse the fixture solution tree and helpers of ``tests/kit``.
"""

from __future__ import annotations

import sys
from pathlib import Path

KIT_TESTS = Path(__file__).resolve().parents[1] / "kit"
sys.path.insert(0, str(KIT_TESTS))

from kit_helpers import git_src, src  # noqa: E402, F401  (fixtures)
