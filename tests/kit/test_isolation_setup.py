"""Choosing the isolation mode and getting bubblewrap: what each machine is told."""

from __future__ import annotations

import pytest

from kit import isolation
from kit.isolation_cli import status_lines


@pytest.fixture
def no_bwrap(monkeypatch):
    """A machine without bubblewrap (and a fresh probe)."""
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None)
    isolation._probe_bwrap.cache_clear()
    yield
    isolation._probe_bwrap.cache_clear()


def test_without_bwrap_and_root_the_command_to_run_is_named(no_bwrap, monkeypatch):
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 1000)
    with pytest.raises(isolation.IsolationUnavailableError,
                       match="sudo apt-get install -y bubblewrap"):
        isolation.ensure_bwrap(install=True)
    assert "not installed" in isolation.unavailable("bwrap")


def test_without_any_isolation_the_choice_names_every_fix(no_bwrap, monkeypatch):
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 1000)
    with pytest.raises(isolation.IsolationUnavailableError) as raised:
        isolation.choose_mode(None)
    message = str(raised.value)
    assert "apt-get install -y bubblewrap" in message
    assert "needs root" in message
    assert "--no-isolation" in message
    assert isolation.choose_mode("none") == "none"  # only by name


def test_the_user_mode_names_the_user_to_create(monkeypatch):
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 0)
    problem = isolation.unavailable("user", user="kit-no-such-user")
    assert "useradd --system --no-create-home --shell /usr/sbin/nologin kit-no-such-user" in (
        problem)
    with pytest.raises(isolation.IsolationUnavailableError, match="kit-no-such-user"):
        isolation.choose_mode("user", user="kit-no-such-user")


def test_an_unknown_mode_is_a_value_error():
    with pytest.raises(ValueError, match="bwrap, user, none"):
        isolation.unavailable("docker")


def test_the_status_lists_every_mode_the_cap_and_the_disk_cap():
    lines = status_lines()
    assert [line.split()[0] for line in lines] == [*isolation.MODES, "cap", "disk"]
    assert lines[-2].split(None, 1)[1] in {"cgroup v1", "cgroup v2", "rlimit"}
    assert f"{isolation.default_disk_mb()} MB per file (RLIMIT_FSIZE)" in lines[-1]
