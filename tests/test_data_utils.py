"""Tests of course.data_utils on a CIFAR-10-layout fixture and on scikit-learn's digits.

Expected arrays come from the fixture's formula (tests/cifar_fixture.py) or from
scikit-learn's raw digits, never from the loader under test.
"""

from __future__ import annotations

import gzip
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from cifar_fixture import (
    LABEL_NAMES,
    TEST_ROWS,
    TRAIN_FILES,
    TRAIN_ROWS,
    expected_images,
    expected_labels,
    make_cifar_folder,
    write_batch,
    write_meta,
    write_random_cifar_folder,
)

from course import data_utils
from course.data_utils import (
    DatasetError,
    get_CIFAR10_data,
    get_data,
    get_digits_data,
    load_CIFAR10,
    load_CIFAR_batch,
)

REPO = Path(__file__).resolve().parent.parent
N_TRAIN = sum(TRAIN_ROWS)
KEYS = ["X_train", "y_train", "X_val", "y_val", "X_test", "y_test", "mean_image", "class_names"]


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete fixture folder, shared read-only by the tests of this module."""
    return make_cifar_folder(tmp_path_factory.mktemp("cifar"))


@pytest.fixture
def no_dataset_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest pins COURSE_DATASET=digits; tests of the automatic choice remove it.
    monkeypatch.delenv("COURSE_DATASET", raising=False)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)


# ----------------------------------------------------------------------------- batches


def test_load_batch_shapes_dtypes_and_values(cifar_root: Path) -> None:
    X, y = load_CIFAR_batch(cifar_root / "data_batch_3")
    # data_batch_3 holds global training rows 4..7 (batches of 3, 1, 4, ...).
    rows = list(range(4, 8))
    assert X.shape == (4, 3, 32, 32) and X.dtype == np.uint8 and X.flags.c_contiguous
    assert y.shape == (4,) and y.dtype == np.int64
    np.testing.assert_array_equal(X, expected_images(rows, "train"))
    np.testing.assert_array_equal(y, expected_labels(rows, "train"))


def test_load_batch_puts_red_green_blue_planes_in_channels_0_1_2(tmp_path: Path) -> None:
    # One hand-written row: red plane 200, green 100, blue 50, and one marked red pixel at
    # (h=1, w=2), which the row-major plane stores at offset 1 * 32 + 2 = 34.
    row = np.array([200] * 1024 + [100] * 1024 + [50] * 1024, dtype=np.uint8)
    row[34] = 7
    write_batch(tmp_path / "b", row[None, :], [4], "one row")
    X, y = load_CIFAR_batch(tmp_path / "b")
    assert X[0, 0, 1, 2] == 7
    assert X[0, 0, 2, 1] == 200  # the transposed position is an ordinary red pixel
    assert np.count_nonzero(X[0, 0] == 200) == 1023
    assert np.all(X[0, 1] == 100) and np.all(X[0, 2] == 50)
    assert y.tolist() == [4]


def test_load_cifar10_concatenates_batches_in_order(cifar_root: Path) -> None:
    Xtr, Ytr, Xte, Yte = load_CIFAR10(cifar_root)
    assert Xtr.shape == (N_TRAIN, 3, 32, 32) and Xtr.dtype == np.uint8
    assert Xte.shape == (TEST_ROWS, 3, 32, 32) and Xte.dtype == np.uint8
    assert Ytr.dtype == np.int64 and Yte.dtype == np.int64
    np.testing.assert_array_equal(Xtr, expected_images(range(N_TRAIN), "train"))
    np.testing.assert_array_equal(Ytr, expected_labels(range(N_TRAIN), "train"))
    np.testing.assert_array_equal(Xte, expected_images(range(TEST_ROWS), "test"))
    np.testing.assert_array_equal(Yte, expected_labels(range(TEST_ROWS), "test"))


# ----------------------------------------------------------------------------- splits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cifar_split_rows_and_mean_subtraction(cifar_root: Path, dtype: type) -> None:
    # 15 training rows: train = 0..8 (crosses three batch boundaries), val = 9..12.
    data = get_CIFAR10_data(num_training=9, num_validation=4, num_test=5, dtype=dtype,
                            root=cifar_root)
    assert list(data) == KEYS
    train = expected_images(range(0, 9), "train").astype(np.float64)
    val = expected_images(range(9, 13), "train").astype(np.float64)
    test = expected_images(range(5), "test").astype(np.float64)
    mean = train.mean(axis=0)
    # float32 holds these values (|x| < 256) to about 1e-5 absolute.
    tol = 1e-4 if dtype == np.float32 else 1e-10
    expected_splits = {"X_train": train - mean, "X_val": val - mean, "X_test": test - mean}
    for key, expected in expected_splits.items():
        arr = data[key]
        assert arr.dtype == dtype and arr.flags.c_contiguous, key
        np.testing.assert_allclose(arr, expected, rtol=0, atol=tol, err_msg=key)
    np.testing.assert_allclose(data["mean_image"], mean, rtol=0, atol=tol)
    assert data["mean_image"].shape == (3, 32, 32) and data["mean_image"].dtype == dtype
    np.testing.assert_array_equal(data["y_train"], expected_labels(range(0, 9), "train"))
    np.testing.assert_array_equal(data["y_val"], expected_labels(range(9, 13), "train"))
    np.testing.assert_array_equal(data["y_test"], expected_labels(range(5), "test"))
    assert all(data[k].dtype == np.int64 for k in ("y_train", "y_val", "y_test"))


def test_cifar_without_mean_subtraction_keeps_pixels(cifar_root: Path) -> None:
    data = get_CIFAR10_data(num_training=N_TRAIN - 2, num_validation=2, num_test=TEST_ROWS,
                            subtract_mean=False, root=cifar_root)
    np.testing.assert_array_equal(data["X_train"], expected_images(range(N_TRAIN - 2), "train"))
    last_two = expected_images([N_TRAIN - 2, N_TRAIN - 1], "train")
    np.testing.assert_array_equal(data["X_val"], last_two)
    np.testing.assert_array_equal(data["X_test"], expected_images(range(TEST_ROWS), "test"))
    assert data["mean_image"].shape == (3, 32, 32) and not data["mean_image"].any()
    assert data["X_train"].dtype == np.float32


@pytest.mark.parametrize("subtract_mean", [True, False])
def test_cifar_unit_scale_divides_by_the_training_pixels_standard_deviation(
    cifar_root: Path, subtract_mean: bool
) -> None:
    kwargs = {"num_training": 9, "num_validation": 4, "num_test": 5, "dtype": np.float64,
              "root": cifar_root, "subtract_mean": subtract_mean}
    plain = get_CIFAR10_data(**kwargs)
    scaled = get_CIFAR10_data(**kwargs, unit_scale=True)
    # One number: the spread of each training pixel around its own mean, over all pixels.
    train = expected_images(range(0, 9), "train").astype(np.float64)
    scale = np.sqrt(np.mean((train - train.mean(axis=0)) ** 2))
    for key in ("X_train", "X_val", "X_test", "mean_image"):
        np.testing.assert_allclose(scaled[key], plain[key] / scale, rtol=1e-12, atol=1e-12,
                                   err_msg=key)
    if subtract_mean:
        assert scaled["X_train"].std() == pytest.approx(1.0, rel=1e-12)


def test_digits_unit_scale_gives_standard_deviation_one() -> None:
    plain = get_digits_data(dtype=np.float64)
    scaled = get_digits_data(dtype=np.float64, unit_scale=True)
    scale = plain["X_train"].std()  # mean-subtracted per pixel: this is the pixels' spread
    for key in ("X_train", "X_val", "X_test", "mean_image"):
        np.testing.assert_allclose(scaled[key], plain[key] / scale, rtol=1e-10, atol=1e-12)
    assert scaled["X_train"].std() == pytest.approx(1.0)


def test_get_data_gives_unit_scale_unless_asked_otherwise() -> None:
    assert get_data("digits")["X_train"].std() == pytest.approx(1.0, rel=1e-5)
    pixels = get_data("digits", unit_scale=False)
    assert pixels["X_train"].std() > 50  # 0..255 pixels, mean-subtracted


def test_cifar_class_names_come_from_batches_meta(tmp_path: Path) -> None:
    names = tuple(f"fixture-class-{i}" for i in range(10))
    root = make_cifar_folder(tmp_path, label_names=names)
    data = get_CIFAR10_data(num_training=3, num_validation=0, num_test=1, root=root)
    assert isinstance(data["class_names"], np.ndarray) and data["class_names"].shape == (10,)
    assert data["class_names"].tolist() == list(names)
    assert data["X_val"].shape == (0, 3, 32, 32)


def test_every_value_has_a_shape(cifar_root: Path) -> None:
    # Notebooks loop `for k, v in data.items(): print(k, v.shape)`.
    data = get_CIFAR10_data(num_training=5, num_validation=1, num_test=2, root=cifar_root)
    shapes = {k: v.shape for k, v in data.items()}
    assert shapes["class_names"] == (10,) and shapes["mean_image"] == (3, 32, 32)
    assert data["class_names"].tolist() == list(LABEL_NAMES)


def test_cifar_too_many_rows_requested(cifar_root: Path) -> None:
    with pytest.raises(ValueError, match=r"num_training \+ num_validation = 14 \+ 2 = 16.*only 15"):
        get_CIFAR10_data(num_training=14, num_validation=2, num_test=1, root=cifar_root)
    with pytest.raises(ValueError, match=rf"num_test = 7 .*only {TEST_ROWS}"):
        get_CIFAR10_data(num_training=1, num_validation=0, num_test=7, root=cifar_root)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"num_training": 0}, ValueError, "num_training must be a positive int; got 0"),
        ({"num_validation": -1}, ValueError, "num_validation must be an int >= 0; got -1"),
        ({"num_test": 2.5}, ValueError, "num_test must be an int >= 0; got 2.5"),
        ({"dtype": np.int32}, ValueError, "dtype must be a floating-point dtype .*got int32"),
    ],
)
def test_cifar_bad_arguments(cifar_root: Path, kwargs: dict, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        get_CIFAR10_data(root=cifar_root, **kwargs)


# ----------------------------------------------------------------------------- broken folders


def test_missing_batch_is_named(tmp_path: Path) -> None:
    root = make_cifar_folder(tmp_path)
    (root / "data_batch_3").unlink()
    for load in (load_CIFAR10, lambda r: get_CIFAR10_data(root=r)):
        with pytest.raises(DatasetError, match=r"missing data_batch_3;.*get_datasets\.sh"):
            load(root)


def test_truncated_pickle_is_named(tmp_path: Path) -> None:
    root = make_cifar_folder(tmp_path)
    raw = (root / "data_batch_2").read_bytes()
    (root / "data_batch_2").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match=r"data_batch_2 is corrupt.*get_datasets\.sh"):
        get_CIFAR10_data(num_training=1, num_validation=0, num_test=1, root=root)


@pytest.mark.parametrize(
    ("batch", "pattern"),
    [
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]},
         r"shape \(N, 3072\), got \(2, 3000\)"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]},
         "uint8 array, got array of float32"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
         r"shape \(2,\) to match b'data', got \(1,\)"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]},
         r"in \[0, 10\), got 0\.\.10"),
        ({b"labels": [0]}, "expected keys b'data' and b'labels'"),
        ([1, 2, 3], "expected a pickled dict, got list"),
    ],
)
def test_wrong_contents_are_named(tmp_path: Path, batch: object, pattern: str) -> None:
    root = make_cifar_folder(tmp_path)
    with open(root / "test_batch", "wb") as f:
        pickle.dump(batch, f)
    with pytest.raises(DatasetError, match=rf"test_batch is corrupt.*{pattern}"):
        load_CIFAR10(root)


def test_bad_meta_is_named(tmp_path: Path) -> None:
    root = make_cifar_folder(tmp_path)
    write_meta(root / "batches.meta", label_names=("a", "b"))
    with pytest.raises(DatasetError, match=r"batches\.meta is corrupt.*list of 10 names"):
        get_CIFAR10_data(num_training=1, num_validation=0, num_test=1, root=root)


def test_dataset_error_is_a_value_error() -> None:
    assert issubclass(DatasetError, ValueError)


# ----------------------------------------------------------------------------- digits


def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float64), digits.target.astype(np.int64)


def test_digits_splits_are_disjoint_cover_everything_and_are_scaled() -> None:
    data = get_digits_data(subtract_mean=False, dtype=np.float64)
    assert data["X_train"].shape == (1200, 1, 8, 8)
    assert data["X_val"].shape == (297, 1, 8, 8)
    assert data["X_test"].shape == (300, 1, 8, 8)
    images, labels = _raw_digits()
    # Every returned image, times 16/255, is an original 0..16 image; together the three
    # splits are the whole dataset exactly once (compare sorted (label, pixels) rows).
    X = np.concatenate([data[k] for k in ("X_train", "X_val", "X_test")]).reshape(1797, 64)
    y = np.concatenate([data[k] for k in ("y_train", "y_val", "y_test")])
    got = np.column_stack([y, np.round(X * 16 / 255)])
    np.testing.assert_allclose(X * 16 / 255, got[:, 1:], atol=1e-9)  # exact multiples of 255/16
    want = np.column_stack([labels, images.reshape(1797, 64)])
    np.testing.assert_array_equal(got[np.lexsort(got.T[::-1])], want[np.lexsort(want.T[::-1])])
    assert X.max() == 255.0 and X.min() == 0.0
    # The shuffle really shuffles: the training split is not the first 1200 images in order.
    assert not np.array_equal(data["y_train"], labels[:1200])
    assert data["class_names"].tolist() == [str(d) for d in range(10)]


def test_digits_are_read_in_load_digits_order_without_importing_sklearn() -> None:
    images, labels = data_utils._digits_arrays()
    raw_images, raw_labels = _raw_digits()
    np.testing.assert_array_equal(images, raw_images)
    np.testing.assert_array_equal(labels, raw_labels)
    assert images.dtype == np.float64 and labels.dtype == np.int64
    # Its import is what the direct read saves (over a second at each notebook start).
    probe = ("import sys; from course.data_utils import get_digits_data; get_digits_data(); "
             "print('sklearn' in sys.modules)")
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert ran.stdout.strip() == "False"


@pytest.mark.parametrize("file", ["missing", "other-layout"])
def test_digits_fall_back_to_load_digits_when_the_file_is_not_as_expected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: str) -> None:
    path = tmp_path / "digits.csv.gz"
    if file == "other-layout":  # e.g. a later scikit-learn with a header or other columns
        with gzip.open(path, "wt") as out:
            out.write("1,2,3\n4,5,6\n")
    monkeypatch.setattr(data_utils, "_sklearn_digits_csv", lambda: path)
    images, labels = data_utils._digits_arrays()
    raw_images, raw_labels = _raw_digits()
    np.testing.assert_array_equal(images, raw_images)
    np.testing.assert_array_equal(labels, raw_labels)


def test_digits_shuffle_is_deterministic_per_seed() -> None:
    a = get_digits_data(seed=3)
    b = get_digits_data(seed=3)
    c = get_digits_data(seed=4)
    for key in KEYS:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.array_equal(a["y_train"], c["y_train"])


def test_digits_mean_subtraction_and_types() -> None:
    raw = get_digits_data(num_training=100, num_validation=50, num_test=20,
                          subtract_mean=False, dtype=np.float64)
    centred = get_digits_data(num_training=100, num_validation=50, num_test=20)
    mean = raw["X_train"].mean(axis=0)
    np.testing.assert_allclose(centred["mean_image"], mean, atol=1e-4)
    for key in ("X_train", "X_val", "X_test"):
        arr = centred[key]
        assert arr.dtype == np.float32 and arr.flags.c_contiguous, key
        np.testing.assert_allclose(arr, raw[key] - mean, atol=1e-4, err_msg=key)
    assert not raw["mean_image"].any() and raw["mean_image"].shape == (1, 8, 8)
    assert centred["y_val"].dtype == np.int64
    np.testing.assert_array_equal(centred["y_val"], raw["y_val"])


def test_digits_sizes_must_fit() -> None:
    get_digits_data(num_training=1797, num_validation=0, num_test=0)  # exactly all: allowed
    with pytest.raises(ValueError, match=r"num_training \+ num_validation \+ num_test = "
                                         r"1200 \+ 298 \+ 300 = 1798.*only 1797"):
        get_digits_data(num_validation=298)


# ----------------------------------------------------------------------------- get_data


def test_env_pins_digits_even_with_cifar_present(
    cifar_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(cifar_root.parent))
    monkeypatch.setenv("COURSE_DATASET", "digits")
    data = get_data(num_training=10, num_validation=5, num_test=5)
    assert capsys.readouterr().out == "Using the embedded digits dataset (COURSE_DATASET=digits).\n"
    assert data["X_train"].shape == (10, 1, 8, 8)


def test_env_pins_cifar(
    cifar_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(cifar_root.parent))
    monkeypatch.setenv("COURSE_DATASET", "cifar10")
    data = get_data(num_training=4, num_validation=1, num_test=2)
    assert capsys.readouterr().out == "Using the CIFAR-10 dataset (COURSE_DATASET=cifar10).\n"
    assert data["X_train"].shape == (4, 3, 32, 32)


def test_argument_beats_env(
    cifar_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(cifar_root.parent))
    monkeypatch.setenv("COURSE_DATASET", "cifar10")
    data = get_data("digits", num_training=10, num_validation=0, num_test=0)
    assert capsys.readouterr().out == "Using the embedded digits dataset (dataset='digits').\n"
    assert data["X_val"].shape == (0, 1, 8, 8)


@pytest.mark.usefixtures("no_dataset_env")
def test_auto_uses_cifar_when_present(
    cifar_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(cifar_root.parent))
    data = get_data(num_training=9, num_validation=4, num_test=5, subtract_mean=False,
                    unit_scale=False)
    out = capsys.readouterr().out
    assert out == "Using the CIFAR-10 dataset: found in $COURSE_DATA_DIR.\n"
    np.testing.assert_array_equal(data["X_val"], expected_images(range(9, 13), "train"))


@pytest.mark.usefixtures("no_dataset_env")
def test_auto_falls_back_to_digits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    data = get_data(num_training=10, num_validation=5, num_test=5)
    assert capsys.readouterr().out == (
        "Using the embedded digits dataset: no CIFAR-10 in $COURSE_DATA_DIR "
        "(run 'make data' to download it).\n"
    )
    assert data["X_test"].shape == (5, 1, 8, 8)


@pytest.mark.usefixtures("no_dataset_env")
def test_auto_message_for_the_default_folder_has_no_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # Stand in for <repo>/datasets without touching the real one, which may hold CIFAR-10.
    monkeypatch.setattr(data_utils, "datasets_dir", lambda: tmp_path)
    get_data("auto", num_training=10, num_validation=5, num_test=5)
    assert capsys.readouterr().out == (
        "Using the embedded digits dataset (dataset='auto'): no CIFAR-10 in datasets/ "
        "(run 'make data' to download it).\n"
    )


@pytest.mark.usefixtures("no_dataset_env")
def test_datasets_dir_default_and_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert data_utils.datasets_dir() == REPO / "datasets"
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert data_utils.datasets_dir() == tmp_path


@pytest.mark.usefixtures("no_dataset_env")
@pytest.mark.parametrize("how", ["auto", "cifar10"])
def test_broken_cifar_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    root = make_cifar_folder(tmp_path)
    (root / "test_batch").unlink()
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match=r"missing test_batch;.*get_datasets\.sh \(make data\)"):
        get_data(how, num_training=2, num_validation=1, num_test=1)


@pytest.mark.usefixtures("no_dataset_env")
def test_auto_with_an_empty_cifar_folder_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty folder is what an interrupted manual copy leaves: report it, do not hide it.
    (tmp_path / "cifar-10-batches-py").mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match=r"missing data_batch_1, .*, batches\.meta;"):
        get_data(num_training=2, num_validation=1, num_test=1)


def test_explicit_cifar_without_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match=r"no CIFAR-10 folder at .*make data"):
        get_data("cifar10")


def test_unknown_dataset_names_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    valid = r"must be one of \('auto', 'cifar10', 'digits'\)"
    with pytest.raises(ValueError, match=f"^get_data: dataset {valid}; got 'mnist'$"):
        get_data("mnist")
    monkeypatch.setenv("COURSE_DATASET", "svhn")
    with pytest.raises(ValueError, match=f"^get_data: COURSE_DATASET {valid}; got 'svhn'$"):
        get_data()


def test_kwargs_reach_the_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DATASET", "digits")
    a = get_data(seed=1, num_training=50, num_validation=0, num_test=0, subtract_mean=False)
    b = get_digits_data(seed=1, num_training=50, num_validation=0, num_test=0, subtract_mean=False,
                        unit_scale=True)  # get_data's default
    np.testing.assert_array_equal(a["X_train"], b["X_train"])
    with pytest.raises(TypeError, match="seed"):
        get_data("cifar10", seed=1)


# ----------------------------------------------------------------------------- memory


@pytest.mark.slow
def test_full_size_load_peak_memory(tmp_path: Path) -> None:
    """Loading all of CIFAR-10 as float32 peaks under 1.5 GB (measured in a fresh process)."""
    root = write_random_cifar_folder(tmp_path)
    script = textwrap.dedent(f"""
        import resource, sys
        from course.data_utils import get_CIFAR10_data
        data = get_CIFAR10_data(root={str(root)!r})
        assert data["X_train"].shape == (49000, 3, 32, 32), data["X_train"].shape
        assert data["X_train"].dtype.name == "float32"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes.
        print(peak * 1024 if sys.platform != "darwin" else peak)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    peak_bytes = int(proc.stdout.strip())
    print(f"peak RSS of the full float32 load: {peak_bytes / 2**30:.2f} GiB")
    assert peak_bytes < 1.5 * 2**30, f"peak RSS {peak_bytes / 2**30:.2f} GiB"


def test_fixture_batch_files_are_the_real_names(cifar_root: Path) -> None:
    # Guards the fixture itself: a loader test on misnamed files would prove nothing.
    assert sorted(p.name for p in cifar_root.iterdir()) == sorted(
        [*TRAIN_FILES, "test_batch", "batches.meta"]
    )
