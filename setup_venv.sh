#!/usr/bin/env bash
# Create or repair the project's virtual environment; `make` runs this (make setup).
#
# Usage: setup_venv.sh PYTHON VENV STAMP
#
# * Two first-time setups at once take turns (flock on this folder where flock exists,
#   a lock folder holding the owner's pid otherwise); the second finds the work done.
# * A half-made venv (no pip: a Python without ensurepip, or an interrupted setup) is
#   detected. pip is restored with ensurepip where possible; otherwise a venv this
#   script made (it holds the marker file .made-by-setup) is recreated, and any other
#   is left alone with the one command that fixes it.
# * STAMP is written last, after every install step succeeded; make uses it to skip all this.
set -euo pipefail

python=$1 venv=$2 stamp=$3
vpy="$venv/bin/python"
marker="$venv/.made-by-setup"
lock_dir=""

say() { echo "$*"; }
fail() {
    echo "error: $*" >&2
    exit 1
}
trap '[[ -z "$lock_dir" ]] || rm -rf "$lock_dir"' EXIT

pid_alive() {
    if [[ -d /proc/self ]]; then [[ -d "/proc/$1" ]]; else kill -0 "$1" 2>/dev/null; fi
}

take_lock() {
    if command -v flock >/dev/null 2>&1; then
        exec 9<.
        if ! flock -n 9; then
            say "Another 'make' is setting up $venv; waiting for it to finish ..."
            flock 9
        fi
        return
    fi
    local candidate=.venv-setup.lock owner
    until mkdir "$candidate" 2>/dev/null; do
        owner=$(<"$candidate/pid") 2>/dev/null || owner=""
        if [[ "$owner" =~ ^[0-9]+$ ]] && ! pid_alive "$owner"; then
            rm -rf "$candidate"
            say "Removed the stale lock $candidate of an interrupted setup (pid $owner)."
            continue
        fi
        say "Another 'make' is setting up $venv; waiting for it to finish ..."
        sleep 2
    done
    echo $$ >"$candidate/pid"
    lock_dir=$candidate
}

has_pip() { "$vpy" -m pip --version >/dev/null 2>&1; }

# The one command that fixes a venv we may not delete ourselves.
fix_hint() {
    echo "rm -rf $venv && make setup  (add PYTHON=python3.12 to use another Python)"
}

no_ensurepip_hint() {
    echo "$python cannot make a venv with pip (its ensurepip module is missing). On Debian" \
        "or Ubuntu install it with 'sudo apt install python3-venv' (or python3.X-venv), or" \
        "use another Python: make setup PYTHON=python3.12"
}

# Leaves a working venv with pip, or exits with a message.
repair_or_create() {
    if [[ -e "$venv" ]] && ! "$vpy" -c '' 2>/dev/null; then
        [[ -f "$marker" ]] || fail "$venv is broken (moved, or its Python is gone) and was not made by this setup; fix it with: $(fix_hint)"
        say "$venv is broken (moved, or its Python is gone): recreating it"
        rm -rf "$venv"
    fi
    if [[ -x "$vpy" ]] && ! has_pip; then
        say "$venv has no pip (a half-made venv); trying to restore it with ensurepip"
        "$vpy" -m ensurepip --upgrade >/dev/null 2>&1 || true
        if ! has_pip; then
            [[ -f "$marker" ]] || fail "$venv has no pip and was not made by this setup; fix it with: $(fix_hint)"
            say "recreating $venv"
            rm -rf "$venv"
        fi
    fi
    if [[ ! -x "$vpy" ]]; then
        say "Creating $venv with $("$python" --version 2>&1)"
        # The marker goes in first, so even a venv that fails half-way is known to be ours.
        mkdir -p "$venv" && touch "$marker"
        if ! "$python" -m venv "$venv" >/dev/null 2>&1 || ! has_pip; then
            rm -rf "$venv"  # ours, and useless: the next run starts clean
            fail "$(no_ensurepip_hint)"
        fi
        touch "$marker"
    fi
}

take_lock
if [[ -f "$stamp" ]] && "$vpy" -c '' 2>/dev/null && has_pip; then
    say "$venv was set up by another 'make' meanwhile."
    exit 0
fi
repair_or_create
say "Installing requirements into $venv (first run only: a few minutes)"
"$vpy" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$vpy" -m pip install --quiet --disable-pip-version-check -r requirements.txt
# setuptools' "Editable installation" notice is a UserWarning: not for a student's screen.
PYTHONWARNINGS="ignore::UserWarning" \
    "$vpy" -m pip install --quiet --disable-pip-version-check --no-deps -e .
rm -f "$venv"/.installed-*
touch "$stamp"
say "Set-up done: $venv is ready (next: 'make check' shows the task scoreboard)."
