"""The lint settings the release writes for files with stubs (kit.release, lint section)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.release import Output, add_per_file_ignores, with_stub_lint_settings

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
RULES = ("F401", "F821")


def test_entries_join_an_existing_table():
    text = ('[tool.ruff.lint.per-file-ignores]\n"notebooks/*.ipynb" = ["E402"]\n\n'
            '[tool.other]\nx = 1\n')
    table = tomllib.loads(add_per_file_ignores(text, ["a.py", "b/c.py"], RULES))
    assert table["tool"]["ruff"]["lint"]["per-file-ignores"] == {
        "a.py": ["F401", "F821"], "b/c.py": ["F401", "F821"], "notebooks/*.ipynb": ["E402"]}
    assert table["tool"]["other"] == {"x": 1}


def test_a_missing_table_is_created():
    text = '[project]\nname = "x"'
    table = tomllib.loads(add_per_file_ignores(text, ["a.py"], RULES))
    assert table["tool"]["ruff"]["lint"]["per-file-ignores"] == {"a.py": ["F401", "F821"]}
    assert table["project"] == {"name": "x"}


def test_only_files_with_stubs_are_listed(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    outputs = [Output("pyproject.toml", source=tmp_path / "pyproject.toml"),
               Output("stubbed.py", data=b"", stubs=2), Output("plain.py", data=b"")]
    patched = with_stub_lint_settings(outputs)
    text = next(o for o in patched if o.rel == "pyproject.toml").data.decode()
    ignores = tomllib.loads(text)["tool"]["ruff"]["lint"]["per-file-ignores"]
    assert list(ignores) == ["stubbed.py"]
    assert with_stub_lint_settings(outputs[:1] + outputs[2:]) == outputs[:1] + outputs[2:]
