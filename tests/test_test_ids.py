"""Parametrised tests' IDs show their values (the conftest's ``pytest_make_parametrize_id``),
checked on the node IDs a real pytest run collects."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SAMPLE = '''
import numpy as np
import pytest


@pytest.mark.parametrize("conv_param", [{"stride": 1, "pad": 0}, {"stride": 2}])
def test_dicts(conv_param):
    pass


@pytest.mark.parametrize("shape", [(2, 3, 5, 5), (6,), [1, 2]])
def test_sequences(shape):
    pass


@pytest.mark.parametrize("value", [np.zeros((2, 3), np.float32), np.dtype("float16"),
                                   np.float64, "x" * 60, {"source": "a\\nb"}, 3, None,
                                   (object(), len)])
def test_numpy_and_text(value):
    pass
'''


def _collected_ids(tmp_path: Path, sample: str = SAMPLE) -> list[str]:
    tests = tmp_path / "tests"
    tests.mkdir()
    shutil.copy(TESTS / "conftest.py", tests / "conftest.py")
    (tests / "test_sample.py").write_text(sample)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-p", "no:nbval"], cwd=tests, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return [line.split("::", 1)[1] for line in run.stdout.splitlines() if "::" in line]


def test_parameters_are_shown_by_value_on_one_line(tmp_path):
    # Written out by hand: what a reader should see in a failure line. pytest alone would
    # give conv_param0, shape0, value0 and so on.
    assert _collected_ids(tmp_path) == [
        "test_dicts[stride=1,pad=0]",
        "test_dicts[stride=2]",
        "test_sequences[(2,3,5,5)]",
        "test_sequences[(6,)]",
        "test_sequences[(1,2)]",
        "test_numpy_and_text[float32(2,3)]",
        "test_numpy_and_text[float16]",
        "test_numpy_and_text[float64]",
        "test_numpy_and_text[" + "x" * 60 + "]",  # plain text: pytest's own ID, whole
        "test_numpy_and_text[source=a\\nb]",  # the newline escaped, not a second line
        "test_numpy_and_text[3]",
        "test_numpy_and_text[None]",
        # By class and name: object()'s repr holds its address, which differs between
        # pytest-xdist's workers, and they must collect the same IDs.
        "test_numpy_and_text[(object,len)]",
    ]


def test_a_value_it_cannot_write_gets_pytests_own_id(tmp_path):
    # A list that holds itself would recurse forever; an object whose shape property
    # raises would stop the collection. Both get pytest's argname-and-index ID instead.
    sample = '''
import pytest

loop = [1]
loop.append(loop)


class Odd:
    @property
    def shape(self):
        raise RuntimeError("no shape")


@pytest.mark.parametrize("value", [loop, (Odd(),)])
def test_odd(value):
    pass
'''
    assert _collected_ids(tmp_path, sample) == ["test_odd[value0]", "test_odd[value1]"]


def test_a_long_value_is_cut_and_equal_ids_stay_apart(tmp_path):
    sample = '''
import pytest


@pytest.mark.parametrize("kwargs", [{"a": "y" * 50, "b": 1}, {"a": "y" * 50, "b": 2}])
def test_long(kwargs):
    pass
'''
    ids = _collected_ids(tmp_path, sample)
    cut = "a=" + "y" * 35 + "..."  # 40 characters
    assert len(cut) == 40
    # The two cut IDs are equal, so pytest numbers them apart.
    assert ids == [f"test_long[{cut}0]", f"test_long[{cut}1]"]
