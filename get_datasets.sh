#!/usr/bin/env bash
# Download CIFAR-10 (python version) into datasets/cifar-10-batches-py.
#
# Usage: ./get_datasets.sh          (or: make data)
#
# The archive is checked (size, then MD5) before anything is extracted, extracted into a
# temporary folder inside the datasets folder, and only then renamed into place: rename(2)
# within one file system is atomic, so an interrupted or failed run never leaves a half
# dataset where the notebooks look for one. The archive is deleted afterwards.
# Running it again when the dataset is complete and intact does nothing: every file is
# checked against its MD5 (the official per-file MD5s of CIFAR-10, or the manifest
# .md5sums this script writes from the verified archive), and a damaged or missing file
# is repaired by downloading a fresh copy. A file that cannot be read is reported as a
# permission problem, not as damage.
#
# Concurrent runs take turns: a lock (flock on the datasets folder where flock exists, a
# lock folder otherwise) makes the second run wait, and the final rename refuses to put
# the dataset inside an existing folder. Temporary folders of a run that was killed
# (their names carry its pid) are removed by the next run, which says so.
#
# Environment (all optional):
#   DATASETS_DIR  where to put cifar-10-batches-py (default: $COURSE_DATA_DIR, the folder
#                 course.data_utils reads, else datasets/ next to this script)
#   DOWNLOADER    curl or wget (default: curl if installed, else wget)
#   CIFAR_URL     archive URL (default: the official Toronto URL); tests point it at a
#                 small fixture archive (file:// with curl, http://127.0.0.1 with wget)
#   CIFAR_MD5     expected MD5 of the archive, hex
#   CIFAR_SIZE    expected size of the archive, bytes
#
# Exit status 0 on success or when the dataset is already complete; otherwise 1 with one
# line on stderr that says what went wrong.

set -euo pipefail

readonly PROG="get_datasets.sh"
readonly FOLDER="cifar-10-batches-py"
readonly FILES=(data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch batches.meta)
readonly OFFICIAL_MD5=c58f30108f718f92721af3b95e74349a
# The MD5 of each file of the official archive (as published with it; torchvision checks
# the same values). Used only when the archive is the official one.
readonly OFFICIAL_FILE_MD5S="\
c99cafc152244af753f735de768cd75f data_batch_1
d4bba439e000b95fd0a9bffe97cbabec data_batch_2
54ebc095f3ab1f0389bbae665268c751 data_batch_3
634d18415352ddfa80567beed471001a data_batch_4
482c414d41f54cd18b22e5b47cb7c3cb data_batch_5
40351d587109b95175f43aff81a1287e test_batch
5ff9c542aee3614f3951f8cda6e48888 batches.meta"
readonly MANIFEST=.md5sums
readonly TMP_PREFIX=.cifar-10-download

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
datasets_dir=${DATASETS_DIR:-${COURSE_DATA_DIR:-$script_dir/datasets}}
url=${CIFAR_URL:-https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz}
expected_md5=${CIFAR_MD5:-$OFFICIAL_MD5}
expected_size=${CIFAR_SIZE:-170498071}

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

# Prints the names of the expected files missing from folder $1 (nothing if complete).
missing_files() {
    local name
    for name in "${FILES[@]}"; do
        # -s: an empty file is as useless as a missing one (e.g. an interrupted copy).
        [[ -f "$1/$name" && -s "$1/$name" ]] || printf '%s ' "$name"
    done
}

# Prints the MD5 of file $1 in lowercase hex, with whichever tool this system has.
md5_of() {
    if command -v md5sum >/dev/null 2>&1; then
        md5sum "$1" | cut -d ' ' -f 1
    elif command -v md5 >/dev/null 2>&1; then
        md5 -q "$1"  # macOS
    elif command -v python3 >/dev/null 2>&1; then
        python3 - "$1" <<'EOF'
import hashlib, sys
digest = hashlib.md5()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
print(digest.hexdigest())
EOF
    else
        return 127
    fi
}

# Last non-empty line of file $1, for quoting a tool's own error in our one-line message.
last_line() {
    grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 | tr -d '\r' || true
}

# Prints "md5 name" lines for folder $1: its manifest if it has one, else the official
# table when the archive is the official one, else nothing (nothing to check against).
reference_md5s() {
    if [[ -f "$1/$MANIFEST" ]]; then
        printf '%s\n' "$(<"$1/$MANIFEST")"
    elif [[ "$expected_md5" == "$OFFICIAL_MD5" ]]; then
        printf '%s\n' "$OFFICIAL_FILE_MD5S"
    fi
}

# Prints "name (why) " for every file of folder $1 that is damaged: a wrong MD5. Dies on
# a file it cannot read, since downloading again would not fix permissions.
damaged_files() {
    local folder=$1 sum name actual
    while read -r sum name; do
        [[ -n "$name" ]] || continue
        if [[ ! -r "$folder/$name" ]]; then
            die "cannot read $folder/$name: permission denied (the file is not damaged); fix it with: chmod -R u+rX '$folder'"
        fi
        actual=$(md5_of "$folder/$name" 2>/dev/null) || die "cannot compute an MD5 of $folder/$name"
        actual=$(printf '%s' "$actual" | tr 'A-F' 'a-f')
        [[ "$actual" == "$sum" ]] || printf '%s ' "$name"
    done < <(reference_md5s "$folder")
}

# Writes the manifest of folder $1 (the MD5 of every expected file).
write_manifest() {
    local name sum
    for name in "${FILES[@]}"; do
        sum=$(md5_of "$1/$name") || return 1
        printf '%s %s\n' "$(printf '%s' "$sum" | tr 'A-F' 'a-f')" "$name"
    done >"$1/$MANIFEST"
}

# Whether process $1 is alive (a folder named with its pid is then not stale).
pid_alive() {
    [[ "$1" == "$$" ]] && return 0
    if [[ -d /proc ]] && [[ -d /proc/self ]]; then
        [[ -d "/proc/$1" ]]
    else
        kill -0 "$1" 2>/dev/null || [[ "$(kill -0 "$1" 2>&1)" == *ermission* ]]
    fi
}

# Removes temporary folders of killed runs in $1 (called with the lock held).
remove_stale_temps() {
    local entry pid
    for entry in "$1/$TMP_PREFIX".*; do
        [[ -d "$entry" && ! -L "$entry" ]] || continue
        pid=${entry##*/"$TMP_PREFIX".}
        pid=${pid%%.*}
        if [[ "$pid" =~ ^[0-9]+$ ]]; then
            pid_alive "$pid" && continue
        elif [[ -z "$(find "$entry" -maxdepth 0 -mmin +60 2>/dev/null)" ]]; then
            continue  # an older script's folder (no pid): stale only when an hour old
        fi
        rm -rf "$entry" && echo "Removed $entry, a temporary folder left by an interrupted run."
    done
}

# The lock: flock on the datasets folder itself (no file left behind), or a lock folder
# holding the owner's pid where flock is missing (macOS).
lock_dir=""
take_lock() {
    if command -v flock >/dev/null 2>&1; then
        exec 9<"$datasets_dir" || die "cannot open $datasets_dir to lock it"
        if ! flock -n 9; then
            echo "Another get_datasets.sh is working in $datasets_dir; waiting for it to finish ..."
            flock 9 || die "cannot lock $datasets_dir"
        fi
        return
    fi
    local candidate="$datasets_dir/.get_datasets.lock" owner waited=0
    until mkdir "$candidate" 2>/dev/null; do
        owner=$(<"$candidate/pid") 2>/dev/null || owner=""
        if [[ "$owner" =~ ^[0-9]+$ ]] && ! pid_alive "$owner"; then
            rm -rf "$candidate"
            echo "Removed the stale lock $candidate of an interrupted run (pid $owner)."
            continue
        fi
        ((waited == 0)) && echo "Another get_datasets.sh${owner:+ (pid $owner)} is working in $datasets_dir; waiting for it to finish ..."
        ((waited += 1)) || true
        ((waited < 7200)) || die "gave up waiting for the lock $candidate; if no other run is active, remove it"
        sleep 1
    done
    echo $$ >"$candidate/pid"
    lock_dir=$candidate
}

# Renames folder $1 to $2, refusing to move it *into* $2 if $2 appeared meanwhile.
rename_no_nest() {
    [[ ! -e "$2" ]] || die "refusing to move the new $FOLDER into the existing $2 (it would nest); remove $2 and run again"
    if mv --version 2>/dev/null | grep -q GNU; then
        mv -T "$1" "$2" 2>/dev/null || die "cannot rename $1 to $2 (it exists now?); remove $2 and run again"
    else
        mv "$1" "$2" || die "cannot move the extracted $FOLDER into $datasets_dir"
    fi
}

[[ "$expected_size" =~ ^[0-9]+$ ]] || die "CIFAR_SIZE must be a whole number of bytes, got '$expected_size'"
[[ "$expected_md5" =~ ^[0-9a-fA-F]{32}$ ]] || die "CIFAR_MD5 must be 32 hex digits, got '$expected_md5'"
expected_md5=$(printf '%s' "$expected_md5" | tr 'A-F' 'a-f')

target="$datasets_dir/$FOLDER"
found_old=""  # set by check_existing: $target is an incomplete or damaged copy to replace

# Checks $target; exits 0 if it is complete and intact, dies if it cannot be used.
# With $1 = quiet, only the "nothing to do" outcome is reported (a first look before
# taking the lock; the real check follows under the lock).
check_existing() {
    local missing damaged quiet=${1:-}
    found_old=""
    if [[ -d "$target" ]]; then
        found_old=1
        missing=$(missing_files "$target")
        if [[ -z "$missing" ]]; then
            damaged=$(damaged_files "$target")
            if [[ -z "$damaged" ]]; then
                echo "CIFAR-10 is already present in $target (all ${#FILES[@]} files, checksums match); nothing to do."
                exit 0
            fi
            [[ -n "$quiet" ]] || echo "Found a damaged $target (MD5 mismatch: ${damaged% }); downloading a fresh copy to repair it."
        else
            [[ -n "$quiet" ]] || echo "Found an incomplete $target (missing or empty: ${missing% }); it will be replaced."
        fi
    elif [[ -e "$target" || -L "$target" ]]; then
        die "$target exists but is not a folder; move it away and run again"
    fi
}
if [[ -d "$target" && ! -r "$target" ]]; then
    die "cannot read $target: permission denied (the data is not damaged); fix it with: chmod -R u+rX '$target'"
fi
if [[ -d "$datasets_dir" ]]; then check_existing quiet; fi

# Pick the downloader before touching the file system, so a bad choice leaves nothing behind.
downloader=${DOWNLOADER:-}
if [[ -z "$downloader" ]]; then
    if command -v curl >/dev/null 2>&1; then
        downloader=curl
    elif command -v wget >/dev/null 2>&1; then
        downloader=wget
    else
        die "neither curl nor wget is installed; install one of them and run again"
    fi
fi
case "$downloader" in
    curl | wget)
        command -v "$downloader" >/dev/null 2>&1 \
            || die "DOWNLOADER=$downloader but $downloader is not installed"
        ;;
    *) die "DOWNLOADER must be 'curl' or 'wget', got '$downloader'" ;;
esac
if [[ "$downloader" == wget && "$url" == file://* ]]; then
    die "wget cannot download file:// URLs ($url); use DOWNLOADER=curl"
fi

created_dir=""
if [[ ! -d "$datasets_dir" ]]; then
    mkdir -p "$datasets_dir" 2>/dev/null || die "cannot create the datasets folder $datasets_dir"
    created_dir=$datasets_dir
fi
tmp=""
# However the script ends: remove the temporary folder and the lock folder, and a
# datasets folder this run created if the run failed (rmdir: only if empty).
trap 'rm -rf "$tmp"; [[ -z "$lock_dir" ]] || rm -rf "$lock_dir"; [[ -z "$created_dir" ]] || rmdir "$created_dir" 2>/dev/null || true' EXIT
take_lock
# Whoever held the lock before may have finished the job, or been killed mid-way.
remove_stale_temps "$datasets_dir"
check_existing
# The temporary folder lives inside datasets_dir so the final rename stays on one file
# system (atomic), not a copy. Its name carries our pid, so a later run can tell it is
# stale if this one is killed before the trap runs.
tmp=$(mktemp -d "$datasets_dir/$TMP_PREFIX.$$.XXXXXX" 2>/dev/null) \
    || die "cannot create a temporary folder in $datasets_dir"
# End on Ctrl-C or kill through `exit`, so the EXIT trap cleans up whatever this bash
# does on fatal signals by itself, and the status says which signal it was.
trap 'exit 130' INT
trap 'exit 143' TERM

archive="$tmp/cifar-10-python.tar.gz"
log="$tmp/tool.log"
echo "Downloading CIFAR-10 ($expected_size bytes) from $url with $downloader ..."
status=0
if [[ "$downloader" == curl ]]; then
    # -f: an HTTP error status is a failure, not a saved error page.
    if [[ -t 2 ]]; then
        curl -fL --retry 2 --progress-bar -o "$archive" "$url" || status=$?
    else
        curl -fsSL --retry 2 -o "$archive" "$url" 2>"$log" || status=$?
    fi
else
    if [[ -t 2 ]]; then
        wget -q --show-progress -O "$archive" "$url" || status=$?
    else
        wget -nv -O "$archive" "$url" 2>"$log" || status=$?
    fi
fi
if ((status != 0)); then
    detail=$(last_line "$log")
    die "download of $url failed ($downloader exit status $status${detail:+: $detail})"
fi

size=$(wc -c <"$archive" | tr -d ' ')
if [[ "$size" != "$expected_size" ]]; then
    die "size mismatch for $url: expected $expected_size bytes, got $size bytes (interrupted or wrong file)"
fi

md5=$(md5_of "$archive") || die "cannot compute an MD5: install md5sum (coreutils), md5 or python3"
md5=$(printf '%s' "$md5" | tr 'A-F' 'a-f')
if [[ "$md5" != "$expected_md5" ]]; then
    die "checksum mismatch for $url: expected MD5 $expected_md5, got $md5"
fi

mkdir "$tmp/extract"
tar -xzf "$archive" -C "$tmp/extract" 2>"$log" \
    || die "corrupt archive from $url: tar could not extract it ($(last_line "$log"))"
rm -f "$archive"  # no longer needed; frees 170 MB before the rename

if [[ ! -d "$tmp/extract/$FOLDER" ]]; then
    die "the archive from $url has no $FOLDER/ folder"
fi
missing=$(missing_files "$tmp/extract/$FOLDER")
if [[ -n "$missing" ]]; then
    die "the archive from $url lacks files in $FOLDER/: ${missing% }"
fi
damaged=$(damaged_files "$tmp/extract/$FOLDER")  # the official table, for the official archive
if [[ -n "$damaged" ]]; then
    die "the archive from $url passed its MD5 but holds files with other MD5s than the official ones: ${damaged% }"
fi
# From the verified archive: what later runs check the extracted files against.
write_manifest "$tmp/extract/$FOLDER" || die "cannot write the checksum manifest in $tmp"

if [[ -n "$found_old" ]]; then
    # The incomplete or damaged folder found above goes into tmp, which the trap deletes.
    # Anything else at $target appeared since, and is not ours to replace.
    mv "$target" "$tmp/old" || die "cannot move the old $target out of the way"
fi
rename_no_nest "$tmp/extract/$FOLDER" "$target"
echo "CIFAR-10 is ready in $target."
