"""Build small (or full-size random) datasets in the exact on-disk layout of CIFAR-10.

The real ``cifar-10-python.tar.gz`` holds one folder, ``cifar-10-batches-py/``, with seven
pickled dicts whose keys are bytes:

* ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``: ``b"batch_label"`` (bytes),
  ``b"labels"`` (list of int in 0..9), ``b"data"`` (uint8 array ``(N, 3072)``: each row is
  the 1024 red values, then 1024 green, then 1024 blue, each 32x32 plane row-major),
  ``b"filenames"`` (list of bytes);
* ``batches.meta``: ``b"num_cases_per_batch"``, ``b"label_names"`` (ten bytes names),
  ``b"num_vis"``.

In the small fixture every pixel is a formula of its position, so a test can predict any
loaded array without reading the files: see :func:`expected_images` and
:func:`expected_labels`. The writer places values by flat offset
``c * 1024 + h * 32 + w`` (the documented layout), not by reshaping, so a loader that
reshapes the wrong way disagrees with the prediction.
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
# Uneven batch sizes: a loader that concatenates in the wrong order or assumes equal
# batches puts rows in the wrong place.
TRAIN_ROWS = (3, 1, 4, 2, 5)
TEST_ROWS = 6
# The real class names, in label order.
LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")


def expected_images(rows: np.ndarray | list[int], split: str) -> np.ndarray:
    """The images the fixture stores at global ``rows`` of ``split`` ("train" or "test").

    Training rows are numbered across the five batches in order (0 .. sum(TRAIN_ROWS) - 1).
    Pixel ``[c, h, w]`` of row ``r`` is ``(base + 17 r + 60 c + 3 h + w) mod 256`` with
    base 0 for train and 128 for test: channels differ by 60, and the formula is not
    symmetric in h and w, so swapped axes show.

    Returns:
        ``(len(rows), 3, 32, 32)`` uint8.
    """
    base = {"train": 0, "test": 128}[split]
    r = np.asarray(rows, dtype=np.int64)[:, None, None, None]
    c = np.arange(3)[None, :, None, None]
    h = np.arange(32)[None, None, :, None]
    w = np.arange(32)[None, None, None, :]
    return ((base + 17 * r + 60 * c + 3 * h + w) % 256).astype(np.uint8)


def expected_labels(rows: np.ndarray | list[int], split: str) -> np.ndarray:
    """The labels the fixture stores at global ``rows`` of ``split``; ``(len(rows),)`` int64."""
    r = np.asarray(rows, dtype=np.int64)
    return (3 * r + 1) % 10 if split == "train" else (7 * r + 2) % 10


def _flat_rows(rows: range, split: str) -> np.ndarray:
    """``(len(rows), 3072)`` uint8 in the CIFAR row layout, written offset by offset."""
    base = {"train": 0, "test": 128}[split]
    data = np.zeros((len(rows), 3072), dtype=np.uint8)
    for i, r in enumerate(rows):
        for c in range(3):
            for h in range(32):
                for w in range(32):
                    data[i, c * 1024 + h * 32 + w] = (base + 17 * r + 60 * c + 3 * h + w) % 256
    return data


def write_batch(path: Path, data: np.ndarray, labels: list[int], batch_label: str) -> None:
    """Pickle one batch dict, keys and strings as bytes, as the real archive has them."""
    batch = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [f"fixture_{i:05d}.png".encode() for i in range(len(labels))],
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_meta(path: Path, label_names: tuple[str, ...] = LABEL_NAMES, rows: int = 10000) -> None:
    """Pickle ``batches.meta``."""
    meta = {
        b"num_cases_per_batch": rows,
        b"label_names": [n.encode() for n in label_names],
        b"num_vis": 3072,
    }
    with open(path, "wb") as f:
        pickle.dump(meta, f, protocol=2)


def make_cifar_folder(
    parent: Path,
    train_rows: tuple[int, ...] = TRAIN_ROWS,
    test_rows: int = TEST_ROWS,
    label_names: tuple[str, ...] = LABEL_NAMES,
) -> Path:
    """Write ``parent/cifar-10-batches-py`` with the formula images; return that folder."""
    folder = Path(parent) / FOLDER
    folder.mkdir(parents=True)
    start = 0
    for i, (name, n) in enumerate(zip(TRAIN_FILES, train_rows, strict=True)):
        rows = range(start, start + n)
        write_batch(folder / name, _flat_rows(rows, "train"),
                    list(expected_labels(list(rows), "train")), f"training batch {i + 1} of 5")
        start += n
    rows = range(test_rows)
    write_batch(folder / "test_batch", _flat_rows(rows, "test"),
                list(expected_labels(list(rows), "test")), "testing batch 1 of 1")
    write_meta(folder / "batches.meta", label_names, rows=max(train_rows))
    return folder


def make_cifar_archive(parent: Path, folder_name: str = FOLDER, **kwargs) -> Path:
    """Write ``parent/cifar-10-python.tar.gz`` holding the fixture folder as ``folder_name/``.

    ``folder_name`` other than the real one makes an archive a downloader must reject.
    Keyword arguments go to :func:`make_cifar_folder`. The staging folder is removed again,
    so only the archive is left in ``parent``.
    """
    parent = Path(parent)
    stage = parent / "stage"
    folder = make_cifar_folder(stage, **kwargs)
    archive = parent / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder_name)
    for path in sorted(folder.iterdir()):
        path.unlink()
    folder.rmdir()
    stage.rmdir()
    return archive


def write_random_cifar_folder(
    parent: Path, rows_per_batch: int = 10000, test_rows: int = 10000, seed: int = 0
) -> Path:
    """Write a full-size ``cifar-10-batches-py`` of random pixels (for memory measurements).

    Same files, keys, dtypes and shapes as the real dataset (50000 + 10000 rows by default).
    """
    rng = np.random.default_rng(seed)
    folder = Path(parent) / FOLDER
    folder.mkdir(parents=True)
    for name, n in [*((f, rows_per_batch) for f in TRAIN_FILES), ("test_batch", test_rows)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        write_batch(folder / name, data, list(rng.integers(0, 10, size=n)), name)
        del data
    write_meta(folder / "batches.meta", rows=rows_per_batch)
    return folder
