"""The Fashion-MNIST idx reader: gzip and plain files, headers checked, captions, a clear error when missing."""

from __future__ import annotations

import numpy as np
import pytest
from flow_tiny import make_fake_dataset, write_idx

from genstudio.export.data import fashion_mnist as fm


def test_reads_gzip_and_plain_splits(tmp_path):
    folder = make_fake_dataset(tmp_path / "fm")
    train, test = fm.load("train", folder), fm.load("test", folder)
    assert train.images.shape == (12, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (6, 28, 28) and list(test.labels) == [0, 1, 2, 3, 4, 5]
    assert len(train) == 12 and train.folder == folder
    assert train.captions()[9] == "a photo of an ankle boot"


def test_environment_variable_names_a_folder(tmp_path, monkeypatch):
    folder = make_fake_dataset(tmp_path / "elsewhere")
    monkeypatch.setenv(fm.ENV_VAR, str(folder))
    assert fm.find_folder() == folder


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(fm.DatasetMissing, match="apt-get install dataset-fashion-mnist"):
        fm.load("train", tmp_path)


def test_a_truncated_file_is_refused(tmp_path):
    path = write_idx(tmp_path / "x-idx3-ubyte", np.zeros((3, 28, 28)), compress=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="header says"):
        fm.read_idx(path)
    path.write_bytes(b"\x08\x03\x00\x00" + b"\x00" * 20)
    with pytest.raises(ValueError, match="not an idx file"):
        fm.read_idx(path)


def test_class_names_and_captions():
    assert len(fm.CLASS_NAMES) == 10 and fm.CLASS_NAMES[9] == "Ankle boot"
    assert fm.caption(0) == "a photo of a T-shirt"
    assert fm.caption(8) == "a photo of a bag"
    with pytest.raises(ValueError):
        fm.load("validation")


@pytest.mark.skipif(not (fm.DEBIAN_DIR / "t10k-labels-idx1-ubyte.gz").exists(), reason="dataset-fashion-mnist not installed")
def test_the_debian_test_split():
    test = fm.load("test")
    assert test.images.shape == (10000, 28, 28)
    assert np.bincount(test.labels).tolist() == [1000] * 10
