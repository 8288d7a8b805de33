"""The caps over a sandbox's process tree: finding the caller's cgroups, making groups
(v1 on this machine, v2 on a fake hierarchy), the RLIMIT fallback, and stale groups."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kit_helpers import dead_pid

from kit import isolation_cgroup as cg

V1_CGROUP = """9:name=systemd:/
8:pids:/
4:memory:/process_api/abc
1:cpu,cpuacct:/
0::/
"""
V1_MOUNTINFO = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
32 31 0:29 /docker/x /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_reads_the_callers_groups_and_the_mounted_hierarchies():
    own = cg.own_groups(V1_CGROUP)
    assert own["memory"] == "/process_api/abc"
    assert own["pids"] == "/"
    assert own["cpu"] == own["cpuacct"] == "/"
    assert own["unified"] == "/"
    mounts = cg.cgroup_mounts(V1_MOUNTINFO)
    assert mounts["memory"] == ("/", Path("/sys/fs/cgroup/memory"))
    assert mounts["cpuacct"] == ("/docker/x", Path("/sys/fs/cgroup/cpu,cpuacct"))
    assert mounts["unified"] == ("/", Path("/sys/fs/cgroup/unified"))
    assert "tmpfs" not in mounts


def test_a_group_path_is_taken_relative_to_what_the_mount_shows():
    mounts = {"cpu": ("/docker/x", Path("/mnt/cpu")), "memory": ("/", Path("/mnt/memory"))}
    assert cg._group_dir(mounts, "cpu", "/docker/x/job") == Path("/mnt/cpu/job")
    assert cg._group_dir(mounts, "memory", "/a/b") == Path("/mnt/memory/a/b")


def fake_v2(tmp_path: Path, enabled: str) -> Path:
    """A fake cgroup v2 hierarchy with the caller in its root group, and a proc folder."""
    mount = tmp_path / "cgroup2"
    mount.mkdir()
    (mount / "cgroup.controllers").write_text("cpu memory pids\n")
    (mount / "cgroup.subtree_control").write_text(enabled)
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text("0::/\n")
    (proc / "mountinfo").write_text(f"30 20 0:26 / {mount} rw - cgroup2 cgroup2 rw\n")
    return proc


def test_v2_in_the_root_group_enables_the_controllers_and_sets_the_caps(tmp_path):
    proc = fake_v2(tmp_path, "")
    cap = cg.create_cap(300, 20, proc=proc)
    group = cap.groups["unified"]
    assert cap.kind == "cgroup v2"
    assert (tmp_path / "cgroup2" / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (group / "memory.max").read_text() == str(300 * 2**20)
    assert (group / "pids.max").read_text() == "20"
    assert cap.join_files() == [str(group / "cgroup.procs")]
    assert cap.rlimits() == {"RLIMIT_CORE": 0}  # the cgroup holds the caps
    assert not cap.memory_exceeded() and not cap.pids_exceeded()
    (group / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    (group / "pids.events").write_text("max 3\n")
    assert cap.memory_exceeded() and cap.pids_exceeded()


def test_v2_in_an_inner_group_without_delegation_falls_back_to_rlimits(tmp_path):
    proc = fake_v2(tmp_path, "")
    (proc / "cgroup").write_text("0::/user.slice/grader\n")
    (tmp_path / "cgroup2" / "user.slice" / "grader").mkdir(parents=True)
    for name, text in (("cgroup.controllers", "memory pids"), ("cgroup.subtree_control", "")):
        (tmp_path / "cgroup2" / "user.slice" / "grader" / name).write_text(text)
    cap = cg.create_cap(300, 20, proc=proc)
    assert cap.kind == "rlimit"
    assert cap.rlimits() == {"RLIMIT_CORE": 0, "RLIMIT_AS": 300 * 2**20, "RLIMIT_NPROC": 20}
    assert cap.join_files() == []


def test_bad_caps_are_refused():
    with pytest.raises(ValueError, match="memory_mb and max_pids"):
        cg.create_cap(0, 10, use_cgroups=False)


def test_groups_of_dead_graders_are_removed_and_others_kept(tmp_path):
    dead = tmp_path / f"{cg.PREFIX}{dead_pid()}-0001"
    live = tmp_path / f"{cg.PREFIX}{os.getpid()}-0002"
    foreign = tmp_path / "someone-else"
    for folder in (dead, live, foreign):
        folder.mkdir()
    assert cg.remove_stale(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and foreign.exists()


def test_this_machines_groups_hold_the_caps_and_go_away():
    cap = cg.create_cap(128, 16)
    if not cap.kind.startswith("cgroup"):
        pytest.skip(f"no cgroup the caller may make here (cap: {cap.kind})")
    groups = dict(cap.groups)
    try:
        if cap.kind == "cgroup v1":
            assert (groups["memory"] / "memory.limit_in_bytes").read_text().strip() == str(
                128 * 2**20)
            assert (groups["pids"] / "pids.max").read_text().strip() == "16"
        assert all(group.name.startswith(f"{cg.PREFIX}{os.getpid()}-")
                   for group in groups.values())
        assert cap.pids() == set()
    finally:
        cap.remove()
    assert not any(group.exists() for group in groups.values())
