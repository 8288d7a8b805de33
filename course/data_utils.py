"""Datasets for the notebooks: CIFAR-10 once downloaded, scikit-learn's digits otherwise.

Every loader returns images in NCHW layout (``(N, C, H, W)``) and integer labels, and the
``get_*_data`` functions return the same dict::

    X_train (num_training, C, H, W)   y_train (num_training,)   int64
    X_val   (num_validation, C, H, W) y_val   (num_validation,) int64
    X_test  (num_test, C, H, W)       y_test  (num_test,)       int64
    mean_image (C, H, W)   the training mean that was subtracted (zeros if none was)
    class_names (num_classes,)  numpy array of str; class_names[y] names label y

so a loop such as ``for k, v in data.items(): print(k, v.shape)`` works on all of them.

* CIFAR-10: 32x32 colour images (C = 3) in ten classes; ``get_datasets.sh`` (``make data``)
  downloads it into ``datasets/cifar-10-batches-py``.
* digits: the 1797 8x8 grayscale images (C = 1) of handwritten digits that ship inside
  scikit-learn, so the notebooks run with no download at all. Pixels are rescaled from
  0..16 to 0..255 so both datasets are in the same units.

``get_data()`` picks between them (argument, else env ``COURSE_DATASET``, else automatic)
and prints one line saying which it uses and why. It also asks for ``unit_scale``: every
image is divided by one number, the standard deviation of the training pixels around
their per-pixel means, so the inputs have mean 0 and standard deviation 1. That is the
scale weight initialisation assumes (He and Xavier keep a layer's output at its input's
size, which is then about 1). The loaders' own default stays 0..255, as in CS231n.

A CIFAR-10 folder that exists but is incomplete or damaged raises :class:`DatasetError`
(a ``ValueError``), naming the file at fault and saying to run ``get_datasets.sh`` again;
``get_data`` never falls back to the digits silently in that case.

Where the data lives: ``$COURSE_DATA_DIR`` if set, else ``datasets/`` at the top of the
repository (the folder that holds the ``course`` package).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from course._checks import expect_float_dtype, expect_int, expect_seed, invalid

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_META_FILE = "batches.meta"
CIFAR10_FILES = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE, CIFAR10_META_FILE)
# One CIFAR-10 image: 3 channels of 32x32.
_CIFAR_SHAPE = (3, 32, 32)
_CIFAR_ROW = 3 * 32 * 32
_CIFAR_CLASSES = 10

DATASETS = ("auto", "cifar10", "digits")
DIGITS_COUNT = 1797  # images in sklearn.datasets.load_digits()

_REDOWNLOAD = "run get_datasets.sh (make data) again to download a fresh copy"


class DatasetError(ValueError):
    """A dataset on disk is missing a file or a file is damaged (truncated, wrong shape).

    The message names the file and says how to get a fresh copy. It subclasses
    ``ValueError`` so code that catches bad-input errors also catches this one.
    """


def datasets_dir() -> Path:
    """The folder that holds downloaded datasets.

    ``$COURSE_DATA_DIR`` if that environment variable is set and not empty, otherwise
    ``datasets/`` at the repository root (the parent of the ``course`` package folder).
    """
    env = os.environ.get("COURSE_DATA_DIR", "")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "datasets"


def _default_cifar_root() -> Path:
    return datasets_dir() / CIFAR10_FOLDER


def _permission_message(path: Path) -> str:
    return (f"cannot read {path}: permission denied (the data is not damaged); give "
            f"yourself read access, e.g. chmod -R u+rX '{path}', or point COURSE_DATA_DIR "
            "at a copy you can read")


def _check_data_dir_setting() -> None:
    """A COURSE_DATA_DIR that is not a folder is a mistake to report, not to skip.

    Falling back to the digits would hide it: the user set the variable on purpose.
    """
    env = os.environ.get("COURSE_DATA_DIR", "")
    if not env:
        return
    folder = Path(env)
    if folder.is_dir():
        return
    what = "is a file, not a folder" if folder.exists() else "does not exist"
    raise DatasetError(
        f"COURSE_DATA_DIR={env} {what}; set it to the folder that holds (or will hold) "
        f"{CIFAR10_FOLDER}/, or unset it to use datasets/ in the repository"
    )


def _cifar_present(root: Path) -> bool:
    """Whether ``root`` exists; a folder we may not look into is reported as such."""
    try:
        root.stat()
    except FileNotFoundError:
        return False
    except PermissionError:
        raise DatasetError(_permission_message(root.parent)) from None
    except OSError:
        return False
    return True


# ----------------------------------------------------------------------------- CIFAR-10


def _unpickle(filename: Path) -> dict:
    """Load one pickled CIFAR-10 dict, turning every failure into a DatasetError naming the file."""
    try:
        with open(filename, "rb") as f:
            # The archive was pickled by Python 2: encoding="bytes" keeps its str keys as
            # bytes and lets its numpy arrays load. pickle runs code from the file, which is
            # why get_datasets.sh verifies the archive's MD5 before extracting it.
            obj = pickle.load(f, encoding="bytes")
    except FileNotFoundError:
        raise DatasetError(f"CIFAR-10 file {filename} is missing; {_REDOWNLOAD}") from None
    except PermissionError:
        # Not damaged: downloading again would not help, fixing the permissions does.
        raise DatasetError(_permission_message(filename)) from None
    except IsADirectoryError:
        raise DatasetError(
            f"CIFAR-10 file {filename} is a folder, not a file; {_REDOWNLOAD}"
        ) from None
    except Exception as exc:  # truncated or garbled pickles raise many different types
        raise DatasetError(
            f"CIFAR-10 file {filename} is corrupt (cannot unpickle it: "
            f"{type(exc).__name__}: {exc}); {_REDOWNLOAD}"
        ) from exc
    if not isinstance(obj, dict):
        raise DatasetError(
            f"CIFAR-10 file {filename} is corrupt: expected a pickled dict, "
            f"got {type(obj).__name__}; {_REDOWNLOAD}"
        )
    return obj


def load_CIFAR_batch(filename: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load one CIFAR-10 batch file (``data_batch_1`` .. ``data_batch_5`` or ``test_batch``).

    The file is a pickled dict whose ``b"data"`` is an ``(N, 3072)`` uint8 array, each row
    one image stored as its red plane, then green, then blue, each plane 32x32 row-major;
    ``b"labels"`` holds N class indices in 0..9.

    Args:
        filename: path of the batch file.

    Returns:
        X: ``(N, 3, 32, 32)`` uint8, NCHW, C-contiguous; ``X[i, 0]`` is the red plane.
        y: ``(N,)`` int64 labels in ``[0, 10)``.

    Raises:
        DatasetError: the file is missing, cannot be unpickled, or holds arrays of the
            wrong shape, dtype or range.
    """
    filename = Path(filename)
    batch = _unpickle(filename)

    def corrupt(what: str) -> DatasetError:
        return DatasetError(f"CIFAR-10 file {filename} is corrupt: {what}; {_REDOWNLOAD}")

    if b"data" not in batch or b"labels" not in batch:
        raise corrupt(f"expected keys b'data' and b'labels', found {sorted(batch)}")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        kind = f"array of {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise corrupt(f"b'data' should be a uint8 array, got {kind}")
    if data.ndim != 2 or data.shape[1] != _CIFAR_ROW:
        raise corrupt(f"b'data' should have shape (N, {_CIFAR_ROW}), got {data.shape}")
    try:
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise corrupt(f"b'labels' is not a list of integers ({exc})") from None
    if labels.shape != (data.shape[0],):
        raise corrupt(
            f"b'labels' should have shape ({data.shape[0]},) to match b'data', got {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= _CIFAR_CLASSES):
        raise corrupt(
            f"labels should lie in [0, {_CIFAR_CLASSES}), got {labels.min()}..{labels.max()}"
        )
    # The plane-by-plane row layout is already channel-major, so a reshape gives NCHW
    # with no transpose and no copy (the unpickled array is C-contiguous).
    X = np.ascontiguousarray(data.reshape(data.shape[0], *_CIFAR_SHAPE))
    return X, labels


def load_cifar10_class_names(root: str | os.PathLike) -> np.ndarray:
    """Read the class names from ``<root>/batches.meta``.

    Returns:
        ``(10,)`` numpy array of str (``"airplane"``, ``"automobile"``, ...); entry k names label k.

    Raises:
        DatasetError: the file is missing or damaged.
    """
    filename = Path(root) / CIFAR10_META_FILE
    meta = _unpickle(filename)
    names = meta.get(b"label_names")
    if not isinstance(names, (list, tuple)) or len(names) != _CIFAR_CLASSES:
        raise DatasetError(
            f"CIFAR-10 file {filename} is corrupt: b'label_names' should be a list of "
            f"{_CIFAR_CLASSES} names, got {names!r:.80}; {_REDOWNLOAD}"
        )
    return np.array([n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names])


def _check_cifar_folder(root: Path) -> None:
    """Fail early, naming every missing file, before spending time unpickling the others."""
    if not _cifar_present(root) or not root.is_dir():
        raise DatasetError(
            f"no CIFAR-10 folder at {root}; run get_datasets.sh (make data) to download it"
        )
    missing = [name for name in CIFAR10_FILES if not (root / name).is_file()]
    if missing:
        raise DatasetError(
            f"CIFAR-10 folder {root} is incomplete: missing {', '.join(missing)}; {_REDOWNLOAD}"
        )


def load_CIFAR10(
    ROOT: str | os.PathLike | None = None,
    *,
    root: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load all of CIFAR-10 from the folder ``cifar-10-batches-py``.

    Args:
        ROOT: the ``cifar-10-batches-py`` folder (CS231n's parameter name).
        root: the same, under the name earlier versions of this kit used; give one of the
            two, not both.

    Returns:
        Xtr: ``(50000, 3, 32, 32)`` uint8, the five training batches in order.
        Ytr: ``(50000,)`` int64.
        Xte: ``(10000, 3, 32, 32)`` uint8, ``test_batch``.
        Yte: ``(10000,)`` int64.
        (The row counts are those of the real dataset; they are whatever the files hold.)

    Raises:
        DatasetError: a file is missing or damaged.
    """
    if (ROOT is None) == (root is None):
        raise invalid("load_CIFAR10", "give the cifar-10-batches-py folder once, as ROOT "
                                      f"(or its old name root); got ROOT={ROOT!r}, "
                                      f"root={root!r}")
    root = Path(ROOT if root is None else root)
    _check_cifar_folder(root)
    parts = [load_CIFAR_batch(root / name) for name in CIFAR10_TRAIN_FILES]
    Xtr = np.concatenate([X for X, _ in parts])
    Ytr = np.concatenate([y for _, y in parts])
    del parts
    Xte, Yte = load_CIFAR_batch(root / CIFAR10_TEST_FILE)
    return Xtr, Ytr, Xte, Yte


def _check_split_arguments(func: str, num_training: Any, num_validation: Any, num_test: Any,
                           dtype: Any) -> tuple[int, int, int, np.dtype]:
    """The split sizes as ints (at least one training row) and the dtype as a float dtype."""
    return (expect_int(func, "num_training", num_training, 1),  # type: ignore[return-value]
            expect_int(func, "num_validation", num_validation, 0),
            expect_int(func, "num_test", num_test, 0),
            expect_float_dtype(func, dtype))


def _divide_in_place(splits: tuple[np.ndarray, ...], scale: float) -> None:
    """Divide each array by ``scale`` in place (no full-size temporary)."""
    for split in splits:
        split /= split.dtype.type(scale)


def _finish(
    X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
    X_test: np.ndarray, y_test: np.ndarray, mean_image: np.ndarray, class_names: np.ndarray,
) -> dict[str, np.ndarray]:
    return {
        "X_train": X_train, "y_train": y_train,
        "X_val": X_val, "y_val": y_val,
        "X_test": X_test, "y_test": y_test,
        "mean_image": mean_image, "class_names": class_names,
    }


def _batch_rows(root: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    # One batch at a time, so at most one uint8 batch is alive beside the float arrays.
    for name in CIFAR10_TRAIN_FILES:
        yield load_CIFAR_batch(root / name)


def get_CIFAR10_data(
    num_training: int = 49000,
    num_validation: int = 1000,
    num_test: int = 1000,
    subtract_mean: bool = True,
    dtype: Any = np.float32,
    root: str | os.PathLike | None = None,
    unit_scale: bool = False,
) -> dict[str, np.ndarray]:
    """Load CIFAR-10 and split it for training, as the CS231n notebooks do.

    Training rows ``[0, num_training)`` of the 50000 (the five batches in order) are the
    training split, rows ``[num_training, num_training + num_validation)`` the validation
    split, and the first ``num_test`` rows of ``test_batch`` the test split. If
    ``subtract_mean``, the per-pixel mean of the training split is subtracted from all three.
    If ``unit_scale``, all three (and ``mean_image``) are then divided by one number: the
    standard deviation of the training split's pixels around their per-pixel means, so
    the training images have standard deviation 1 (the scale He and Xavier initialisation
    assume). The default keeps CS231n's units, 0..255.

    Memory: the float arrays are allocated once at their final size and filled one batch
    at a time, and the mean is accumulated in exact integer sums, so no float64 copy of the
    data and no full uint8 copy of the training set exists. Loading the default splits as
    float32 peaks at about 0.75 GB of resident memory, Python included (measured by
    tests/test_data_utils.py::test_full_size_load_peak_memory).

    Args:
        num_training: rows in the training split (>= 1).
        num_validation: rows in the validation split (>= 0).
        num_test: rows in the test split (>= 0, <= rows of ``test_batch``).
        subtract_mean: subtract the training split's mean image from every split.
        dtype: floating dtype of the image arrays (float32 by default to halve memory).
        root: the ``cifar-10-batches-py`` folder; default ``<datasets dir>/cifar-10-batches-py``.
        unit_scale: divide by the training pixels' standard deviation (see above).

    Returns:
        A dict with ``X_train`` ``(num_training, 3, 32, 32)``, ``X_val``
        ``(num_validation, 3, 32, 32)`` and ``X_test`` ``(num_test, 3, 32, 32)`` of
        ``dtype``, C-contiguous; ``y_train``, ``y_val``, ``y_test`` int64 labels in 0..9;
        ``mean_image`` ``(3, 32, 32)`` of ``dtype`` (zeros if ``subtract_mean`` is false);
        ``class_names`` ``(10,)`` array of str from ``batches.meta``.

    Raises:
        DatasetError: the folder is missing, incomplete or damaged.
        ValueError: the requested splits need more rows than the files hold.
    """
    num_training, num_validation, num_test, dt = _check_split_arguments(
        "get_CIFAR10_data", num_training, num_validation, num_test, dtype)
    root = _default_cifar_root() if root is None else Path(root)
    _check_cifar_folder(root)
    class_names = load_cifar10_class_names(root)

    wanted = num_training + num_validation
    X_train = np.empty((num_training, *_CIFAR_SHAPE), dtype=dt)
    X_val = np.empty((num_validation, *_CIFAR_SHAPE), dtype=dt)
    y_train = np.empty(num_training, dtype=np.int64)
    y_val = np.empty(num_validation, dtype=np.int64)
    # Sums of uint8 pixels over <= 50000 rows fit easily in int64 and are exact, so the
    # mean does not depend on the order of additions or on the chosen dtype.
    pixel_sums = np.zeros(_CIFAR_SHAPE, dtype=np.int64)
    # And of their squares (at most 50000 * 255**2 per pixel), for unit_scale's variance.
    square_sums = np.zeros(_CIFAR_SHAPE, dtype=np.int64)

    start = 0  # global index of the current batch's first row
    for X, y in _batch_rows(root):
        stop = start + X.shape[0]
        # Rows of this batch that fall into each split, as [lo, hi) in global indices.
        for dest_X, dest_y, lo, hi in (
            (X_train, y_train, 0, num_training),
            (X_val, y_val, num_training, wanted),
        ):
            a, b = max(start, lo), min(stop, hi)
            if a < b:
                # Assignment converts uint8 -> dt in numpy's small buffers: no full-size temporary.
                dest_X[a - lo:b - lo] = X[a - start:b - start]
                dest_y[a - lo:b - lo] = y[a - start:b - start]
                if dest_X is X_train:
                    pixel_sums += X[a - start:b - start].sum(axis=0, dtype=np.int64)
                    if unit_scale:
                        square_sums += _square_sums(X[a - start:b - start])
        start = stop
        del X, y
    if start < wanted:
        raise invalid("get_CIFAR10_data", (
            f"num_training + num_validation = {num_training} + {num_validation} = {wanted} "
            f"rows requested, but the training batches in {root} hold only {start}"))

    Xte, yte = load_CIFAR_batch(root / CIFAR10_TEST_FILE)
    if num_test > Xte.shape[0]:
        raise invalid("get_CIFAR10_data", (
            f"num_test = {num_test} rows requested, but {root / CIFAR10_TEST_FILE} "
            f"holds only {Xte.shape[0]}"))
    X_test = Xte[:num_test].astype(dt)  # astype copies, so the full uint8 test set can go
    y_test = yte[:num_test].copy()
    del Xte, yte

    if subtract_mean:
        mean_image = (pixel_sums / num_training).astype(dt)
        # In place: a new (X - mean) array would double the peak for a moment.
        for split in (X_train, X_val, X_test):
            split -= mean_image
    else:
        mean_image = np.zeros(_CIFAR_SHAPE, dtype=dt)
    if unit_scale:
        # Per-pixel variance E[x^2] - E[x]^2 from the exact sums, averaged over pixels.
        means = pixel_sums / num_training
        variance = float(np.mean(square_sums / num_training - means * means))
        _divide_in_place((X_train, X_val, X_test, mean_image), _pixel_scale(variance))
    return _finish(X_train, y_train, X_val, y_val, X_test, y_test, mean_image, class_names)


def _square_sums(rows: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Per-pixel sums of squares of uint8 ``rows``, exact, a few MB of temporaries at a time."""
    total = np.zeros(rows.shape[1:], dtype=np.int64)
    for start in range(0, rows.shape[0], chunk):
        part = rows[start:start + chunk].astype(np.uint16)  # 255**2 fits in uint16
        total += (part * part).sum(axis=0, dtype=np.int64)
    return total


def _pixel_scale(variance: float) -> float:
    """The standard deviation to divide by (1 for a training set whose pixels never vary)."""
    return float(np.sqrt(variance)) if variance > 0 else 1.0


# ----------------------------------------------------------------------------- digits


def get_digits_data(
    num_training: int = 1200,
    num_validation: int = 297,
    num_test: int = 300,
    subtract_mean: bool = True,
    dtype: Any = np.float32,
    seed: int = 0,
    unit_scale: bool = False,
) -> dict[str, np.ndarray]:
    """Load scikit-learn's bundled handwritten digits, shaped and split like CIFAR-10.

    The 1797 8x8 grayscale images (pixel values 0..16) are rescaled by 255/16 to 0..255,
    the units of CIFAR-10, shaped ``(1797, 1, 8, 8)`` (NCHW with one channel), shuffled
    with ``np.random.default_rng(seed).permutation`` and split in that shuffled order:
    the first ``num_training`` rows, the next ``num_validation``, the next ``num_test``.
    If ``subtract_mean``, the per-pixel mean of the training split is subtracted from all
    three. If ``unit_scale``, all three (and ``mean_image``) are then divided by the
    standard deviation of the training split's pixels around their per-pixel means, so the
    training images have standard deviation 1. Nothing is downloaded: the images ship
    inside scikit-learn.

    Args:
        num_training: rows in the training split (>= 1).
        num_validation: rows in the validation split (>= 0).
        num_test: rows in the test split (>= 0); the three must sum to at most 1797.
        subtract_mean: subtract the training split's mean image from every split.
        dtype: floating dtype of the image arrays.
        seed: seed of the shuffle; the same seed gives the same split.
        unit_scale: divide by the training pixels' standard deviation (see above).

    Returns:
        A dict with ``X_train`` ``(num_training, 1, 8, 8)``, ``X_val``
        ``(num_validation, 1, 8, 8)``, ``X_test`` ``(num_test, 1, 8, 8)`` of ``dtype``,
        C-contiguous; ``y_train``, ``y_val``, ``y_test`` int64 in 0..9; ``mean_image``
        ``(1, 8, 8)`` of ``dtype`` (zeros if ``subtract_mean`` is false); ``class_names``
        ``(10,)`` array of str ``"0"`` .. ``"9"``.

    Raises:
        ValueError: the three sizes add up to more than 1797.
    """
    num_training, num_validation, num_test, dt = _check_split_arguments(
        "get_digits_data", num_training, num_validation, num_test, dtype)
    expect_seed("get_digits_data", seed)
    total = num_training + num_validation + num_test
    if total > DIGITS_COUNT:
        raise invalid("get_digits_data", (
            f"num_training + num_validation + num_test = {num_training} + {num_validation} + "
            f"{num_test} = {total}, but the digits dataset has only {DIGITS_COUNT} images"))

    images, labels = _digits_arrays()  # (1797, 8, 8) float64 in 0..16, (1797,) int64
    if images.shape != (DIGITS_COUNT, 8, 8):  # guards the constant above against a new sklearn
        raise RuntimeError(
            f"the digits dataset had images of shape {images.shape}, "
            "expected (1797, 8, 8)"
        )
    X = (images * (255.0 / 16.0))[:, None, :, :]  # (1797, 1, 8, 8)

    order = np.random.default_rng(seed).permutation(DIGITS_COUNT)
    idx_train = order[:num_training]
    idx_val = order[num_training:num_training + num_validation]
    idx_test = order[num_training + num_validation:total]

    # The data is tiny, so the arithmetic runs in float64 and is rounded to dtype once.
    mean64 = X[idx_train].mean(axis=0) if subtract_mean else np.zeros((1, 8, 8))
    scale = _pixel_scale(float(X[idx_train].var(axis=0).mean())) if unit_scale else 1.0
    mean64 = mean64 / scale

    def split(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.ascontiguousarray((X[idx] / scale - mean64).astype(dt)), labels[idx].copy()

    X_train, y_train = split(idx_train)
    X_val, y_val = split(idx_val)
    X_test, y_test = split(idx_test)
    class_names = np.array([str(d) for d in range(10)])
    return _finish(X_train, y_train, X_val, y_val, X_test, y_test, mean64.astype(dt), class_names)


def _sklearn_digits_csv() -> Path | None:
    """Where scikit-learn keeps the digits it ships (``datasets/data/digits.csv.gz``),
    found without importing it; None if it is not installed."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: images ``(1797, 8, 8)`` float64 in 0..16 and labels
    ``(1797,)`` int64, as ``sklearn.datasets.load_digits()`` gives them.

    Read from the CSV file scikit-learn ships (a row: 64 pixels, then the label) without
    importing scikit-learn, whose import takes over a second at every notebook start (25 ms
    for the file). A file that is missing or not what that layout says, as a later
    scikit-learn could make it, falls back to ``load_digits()``."""
    path = _sklearn_digits_csv()
    if path is not None and path.is_file():
        with gzip.open(path, "rt") as rows:
            table = np.loadtxt(rows, delimiter=",", ndmin=2)
        pixels, labels = table[:, :-1], table[:, -1]
        if (table.shape == (DIGITS_COUNT, 65) and np.all(pixels == np.round(pixels))
                and pixels.min() >= 0 and pixels.max() <= 16
                and np.array_equal(np.unique(labels), np.arange(10))):
            return pixels.reshape(-1, 8, 8), labels.astype(np.int64)
    # Imported here: scikit-learn takes a second to import and CIFAR-10 users never need it.
    from sklearn.datasets import load_digits

    digits = load_digits()
    return np.asarray(digits.images, dtype=np.float64), np.asarray(digits.target, np.int64)


# ----------------------------------------------------------------------------- choice


def _where() -> str:
    # The notice must read the same on every machine (nbval compares it), so it names the
    # setting, never the absolute folder.
    return "$COURSE_DATA_DIR" if os.environ.get("COURSE_DATA_DIR") else "datasets/"


def get_data(dataset: str | None = None, **kwargs: Any) -> dict[str, np.ndarray]:
    """Load the notebooks' dataset: CIFAR-10 if it is there, else the embedded digits.

    The choice: ``dataset`` if given, else the environment variable ``COURSE_DATASET``,
    else ``"auto"``. ``"cifar10"`` and ``"digits"`` force a dataset; ``"auto"`` uses
    CIFAR-10 when the folder ``<datasets dir>/cifar-10-batches-py`` exists (see
    :func:`datasets_dir`) and the digits otherwise. Prints exactly one line saying which
    dataset is used and why, the same on every machine (no paths, no timings).

    Args:
        dataset: ``"auto"``, ``"cifar10"``, ``"digits"`` or None (case-insensitive).
        **kwargs: passed to :func:`get_CIFAR10_data` or :func:`get_digits_data`
            (``num_training``, ``num_validation``, ``num_test``, ``subtract_mean``, ``dtype``, ...).
            ``unit_scale`` is True unless given: the images come with standard deviation 1.

    Returns:
        The dict described in :func:`get_CIFAR10_data` / :func:`get_digits_data`.

    Raises:
        ValueError: unknown dataset name.
        DatasetError: ``$COURSE_DATA_DIR`` is set but is not a folder (unless the digits
            are forced); or CIFAR-10 cannot be read for lack of permission; or it was
            chosen (explicitly, or by ``"auto"`` because its folder exists) but is
            missing, incomplete or damaged. ``"auto"`` does not fall back to
            the digits then: a broken download should be fixed, not hidden.
    """
    if dataset is not None:
        source = f"dataset={dataset!r}"
        name = str(dataset)
    elif os.environ.get("COURSE_DATASET", "").strip():
        name = os.environ["COURSE_DATASET"]
        source = f"COURSE_DATASET={name.strip()}"
    else:
        name, source = "auto", ""
    key = name.strip().lower()
    if key not in DATASETS:  # case and surrounding spaces do not matter
        where = "dataset" if dataset is not None else "COURSE_DATASET"
        raise invalid("get_data", f"{where} must be one of {DATASETS!r}; got {name!r}")

    if key != "digits":
        _check_data_dir_setting()
    if key == "auto":
        cifar_root = _default_cifar_root()
        if _cifar_present(cifar_root):
            key = "cifar10"
            reason = f": found in {_where()}"
        else:
            key = "digits"
            reason = f": no CIFAR-10 in {_where()} (run 'make data' to download it)"
        if source:  # auto chosen explicitly: say so too
            reason = f" ({source}){reason}"
    else:
        reason = f" ({source})"

    kwargs.setdefault("unit_scale", True)
    if key == "cifar10":
        print(f"Using the CIFAR-10 dataset{reason}.")
        return get_CIFAR10_data(**kwargs)
    print(f"Using the embedded digits dataset{reason}.")
    return get_digits_data(**kwargs)
