#!/usr/bin/env bash
# Download CIFAR-10 (python version) into datasets/cifar-10-batches-py.
#
# Usage: ./get_datasets.sh          (or: make data)
#
# The archive is checked (size, then MD5) before anything is extracted, extracted into a
# temporary folder inside the datasets folder, and only then renamed into place: rename(2)
# within one file system is atomic, so an interrupted or failed run never leaves a half
# dataset where the notebooks look for one. The archive is deleted afterwards.
# Running it again when the dataset is complete does nothing.
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

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
datasets_dir=${DATASETS_DIR:-${COURSE_DATA_DIR:-$script_dir/datasets}}
url=${CIFAR_URL:-https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz}
expected_md5=${CIFAR_MD5:-c58f30108f718f92721af3b95e74349a}
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

[[ "$expected_size" =~ ^[0-9]+$ ]] || die "CIFAR_SIZE must be a whole number of bytes, got '$expected_size'"
[[ "$expected_md5" =~ ^[0-9a-fA-F]{32}$ ]] || die "CIFAR_MD5 must be 32 hex digits, got '$expected_md5'"
expected_md5=$(printf '%s' "$expected_md5" | tr 'A-F' 'a-f')

target="$datasets_dir/$FOLDER"
if [[ -d "$target" ]]; then
    missing=$(missing_files "$target")
    if [[ -z "$missing" ]]; then
        echo "CIFAR-10 is already present in $target (all ${#FILES[@]} files); nothing to do."
        exit 0
    fi
    echo "Found an incomplete $target (missing or empty: ${missing% }); it will be replaced."
elif [[ -e "$target" ]]; then
    die "$target exists but is not a folder; move it away and run again"
fi

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
# The temporary folder lives inside datasets_dir so the final mv is a same-file-system
# rename (atomic), not a copy. The trap removes it however the script ends.
tmp=$(mktemp -d "$datasets_dir/.cifar-10-download.XXXXXX" 2>/dev/null) \
    || die "cannot create a temporary folder in $datasets_dir"
# A datasets folder this run created is removed again if the run fails (rmdir: only if empty).
trap 'rm -rf "$tmp"; [[ -z "$created_dir" ]] || rmdir "$created_dir" 2>/dev/null || true' EXIT
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

if [[ -e "$target" ]]; then
    # The incomplete folder found above goes into tmp, which the trap deletes.
    mv "$target" "$tmp/old" || die "cannot move the incomplete $target out of the way"
fi
mv "$tmp/extract/$FOLDER" "$target" || die "cannot move the extracted $FOLDER into $datasets_dir"
echo "CIFAR-10 is ready in $target."
