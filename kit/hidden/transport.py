"""Data-only messages between the grader and the hidden-check worker: ``.npz`` files.

A message is a tree of plain values: dicts with string keys, lists, tuples, ``None``,
bools, ints, floats, strings and numeric numpy arrays. It is stored as one ``.npz``
(``numpy.savez``, never pickled): the arrays as members ``a0, a1, ...`` and the shape of
the tree as JSON in the member ``__tree__`` (UTF-8 bytes), where an array appears as
``{"array": "a3"}``, a float as ``{"float": 0.5}`` and so on. A dict is a list of
``[key, node]`` pairs, so ``bn_param`` or an optimizer config travels as data and comes
back as a dict.

Reading (``read_message``) trusts nothing: the file size, the number of members, their
unpacked size, the JSON's depth and every array's dtype are capped or checked, the
arrays are loaded with ``allow_pickle=False``, and anything off raises
``MessageError``. The grader reads what the worker wrote only through it.

This file is copied beside the worker into the sandbox, so it imports numpy and the
standard library only.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

TREE_KEY = "__tree__"
NUMERIC_KINDS = "biuf"  # bool, signed and unsigned ints, floats: what an array may hold
MAX_FILE_BYTES = 64 * 2**20
MAX_MEMBERS = 4096
MAX_DEPTH = 16
MAX_STRING = 2000


class MessageError(ValueError):
    """A message that is not a well-formed data-only tree within the caps."""


class Rejected:
    """A value the sender would not transport (an ndarray subclass, an object array...):
    it travels as ``{"rejected": why}`` so the receiver can say what was returned."""

    def __init__(self, why: str) -> None:
        self.why = why[:MAX_STRING]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rejected) and other.why == self.why

    def __hash__(self) -> int:
        return hash(self.why)

    def __repr__(self) -> str:
        return f"Rejected({self.why!r})"


# ---------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------

def describe(value: Any) -> str:
    """A short, plain description of a value's type (no repr: that could be anything)."""
    kind = type(value)
    name = f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" \
        else kind.__qualname__
    return "".join(c for c in name if c.isalnum() or c in "._")[:80]


def _encode(value: Any, arrays: dict[str, np.ndarray], depth: int) -> Any:
    if depth > MAX_DEPTH:
        return {"rejected": "nested too deeply"}
    if isinstance(value, Rejected):
        return {"rejected": value.why}
    if value is None:
        return {"none": True}
    kind = type(value)
    if kind is bool or kind is np.bool_:
        return {"bool": bool(value)}
    if kind is int or (isinstance(value, np.integer) and kind.__module__ == "numpy"):
        return {"int": int(value)}
    if kind is float or (isinstance(value, np.floating) and kind.__module__ == "numpy"):
        return {"float": float(value)}
    if kind is str:
        return {"str": value[:MAX_STRING]}
    if kind is np.ndarray:
        if value.dtype.kind not in NUMERIC_KINDS or value.dtype.hasobject:
            return {"rejected": f"an array of dtype {value.dtype.str[:20]}, not numbers"}
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(value)
        return {"array": key}
    if kind in (list, tuple):
        tag = "list" if kind is list else "tuple"
        return {tag: [_encode(item, arrays, depth + 1) for item in value]}
    if kind is dict:
        if not all(type(k) is str for k in value):
            return {"rejected": "a dict with keys that are not strings"}
        return {"dict": [[k, _encode(v, arrays, depth + 1)] for k, v in value.items()]}
    if isinstance(value, np.ndarray):
        return {"rejected": f"an ndarray subclass ({describe(value)}), not a plain ndarray"}
    return {"rejected": f"a {describe(value)}, not a number or an array"}


def encode(tree: Any) -> dict[str, np.ndarray]:
    """The members of the ``.npz`` that carries ``tree``."""
    arrays: dict[str, np.ndarray] = {}
    shape = _encode(tree, arrays, 0)
    text = json.dumps(shape, allow_nan=True)
    arrays[TREE_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return arrays


def write_message(path: Path, tree: Any) -> None:
    """Write ``tree`` to ``path`` atomically (a temp file in the same folder, renamed)."""
    members = encode(tree)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, allow_pickle=False, **members)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------
# Decoding (the grader reads untrusted files through this)
# ---------------------------------------------------------------------------------------

def _check_archive(data: bytes, max_bytes: int) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise MessageError(f"not an npz archive ({type(error).__name__})") from None
    if len(infos) > MAX_MEMBERS:
        raise MessageError(f"{len(infos)} members (at most {MAX_MEMBERS})")
    if sum(info.file_size for info in infos) > max_bytes:
        raise MessageError(f"unpacks to more than {max_bytes} bytes")


def _decode(node: Any, arrays: Any, depth: int) -> Any:
    if depth > MAX_DEPTH or not isinstance(node, dict) or len(node) != 1:
        raise MessageError("malformed tree")
    (tag, body), = node.items()
    if tag == "none":
        return None
    if tag == "bool" and type(body) is bool:
        return body
    if tag == "int" and type(body) is int:
        return body
    if tag == "float" and type(body) in (float, int):
        return float(body)
    if tag in ("str", "rejected") and type(body) is str:
        return body[:MAX_STRING] if tag == "str" else Rejected(body)
    if tag in ("list", "tuple") and type(body) is list:
        items = [_decode(item, arrays, depth + 1) for item in body]
        return items if tag == "list" else tuple(items)
    if tag == "dict" and type(body) is list:
        pairs = {}
        for pair in body:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise MessageError("malformed dict")
            pairs[pair[0]] = _decode(pair[1], arrays, depth + 1)
        return pairs
    if tag == "array" and type(body) is str and body != TREE_KEY and body in arrays.files:
        return _load_array(arrays, body)
    raise MessageError(f"unknown node {tag!r}")


def _load_array(arrays: Any, key: str) -> np.ndarray:
    try:
        value = arrays[key]  # allow_pickle=False: an object array raises here
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise MessageError(f"array {key} unreadable ({type(error).__name__})") from None
    if type(value) is not np.ndarray or value.dtype.kind not in NUMERIC_KINDS:
        raise MessageError(f"array {key} holds dtype {value.dtype}, not numbers")
    return value


def _read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``: never a
    symlink (which could point at any file of the grader), a FIFO (which would block) or
    a device."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise MessageError(f"unreadable ({type(error).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise MessageError("not a regular file")
        if info.st_size > max_bytes:
            raise MessageError(f"{info.st_size} bytes (at most {max_bytes})")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise MessageError(f"more than {max_bytes} bytes")
    return data


def read_message(path: Path, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """The tree stored in ``path``; ``MessageError`` for anything but a capped data-only
    message in a regular file (nothing is unpickled)."""
    data = _read_regular_file(path, max_bytes)
    _check_archive(data, max_bytes)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            if TREE_KEY not in arrays.files:
                raise MessageError("no tree")
            raw = _load_array(arrays, TREE_KEY)
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise MessageError("malformed tree")
            try:
                shape = json.loads(raw.tobytes().decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise MessageError("malformed tree") from None
            return _decode(shape, arrays, 0)
    except MessageError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise MessageError(f"unreadable ({type(error).__name__})") from None
