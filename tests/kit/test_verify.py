"""kit verify: which stored outputs do not reproduce, and where its reports may go."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kit import outputs, verify
from kit.nbval_runner import Limits

ROOT = Path(__file__).resolve().parents[2]


TINY_NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": ["# Tiny\n"]},
        {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": 1,
         "source": ["print(1 + 1)\n"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["2\n"]}]},
        {"cell_type": "markdown", "id": "m2", "metadata": {}, "source": ["## ReLU\n"]},
        {"cell_type": "code", "id": "c2", "metadata": {"tags": ["check"], "check": "relu"},
         "execution_count": 2,
         "source": ["import numpy as np\n", "from course.layers import relu_forward\n",
                    "print(relu_forward(np.array([-1.0, 2.0]))[0])\n"],
         # Tampered: the student's relu prints [0. 2.].
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["[0. 3.]\n"]}]},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


@pytest.mark.slow
def test_verify_names_the_cell_whose_stored_output_does_not_reproduce(tmp_path):
    sub = tmp_path / "student"
    copy_course(sub)
    (sub / "notebooks").mkdir()
    (sub / "notebooks" / "Tiny.ipynb").write_text(json.dumps(TINY_NOTEBOOK))
    report = verify.verify_one(sub, Limits(cell_timeout=30, wall=120, memory_mb=2048))
    differing = report["notebooks"]["Tiny"]["not_reproduced"]
    assert [c["cell"] for c in differing] == ['cell 4 under "ReLU" [check relu]']
    assert differing[0]["stored"] == "[0. 3.]\n" and differing[0]["now"] == "[0. 2.]\n"


def copy_course(sub: Path) -> None:
    shutil.copytree(ROOT / "course", sub / "course", ignore=shutil.ignore_patterns("__pycache__"))


def test_verify_refuses_an_out_folder_it_did_not_make(tmp_path, capsys):
    sub = tmp_path / "student"
    sub.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("mine")
    assert verify.main([str(sub), "--out", str(work)]) == 2
    assert "did not create it; refusing to write into it" in capsys.readouterr().err
    assert [p.name for p in work.iterdir()] == ["thesis.tex"]
    outputs.claim_folder(tmp_path / "reports", verify.OUT_STAMP)
    assert verify.OUT_STAMP.owns(tmp_path / "reports")
