"""IDX parsing, Fashion-MNIST discovery and the DataLoader, on small files written here."""
import gzip
import hashlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nn import data
from nn.data import DataLoader, read_idx, read_idx_images, read_idx_labels, write_idx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _images(count=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(count, 28, 28), dtype=np.uint8)


def _labels(count=7, seed=0):
    return np.random.default_rng(seed + 1).integers(0, 10, size=count, dtype=np.uint8)


def _write_split(directory, split, images, labels, compress=True):
    images_name, labels_name = data.FASHION_MNIST_FILES[split]
    suffix = ".gz" if compress else ""
    write_idx(os.path.join(directory, images_name + suffix), images)
    write_idx(os.path.join(directory, labels_name + suffix), labels)


# -- IDX format --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip_raw_and_gzip(tmp_path, suffix):
    images = _images()
    path = tmp_path / ("images.idx" + suffix)
    write_idx(path, images)
    with open(path, "rb") as stream:
        is_gzip = stream.read(2) == b"\x1f\x8b"
    assert is_gzip == (suffix == ".gz")
    loaded = read_idx_images(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (7, 28, 28)
    np.testing.assert_array_equal(loaded, images)


def test_idx_header_bytes_match_the_format(tmp_path):
    labels = np.array([3, 1, 4], dtype=np.uint8)
    write_idx(tmp_path / "labels", labels)
    content = (tmp_path / "labels").read_bytes()
    # magic 2049 big-endian, count 3 big-endian, then the raw bytes
    assert content == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])
    assert int.from_bytes(content[:4], "big") == data.IDX_LABELS_MAGIC


def test_gzip_detected_by_content_not_name(tmp_path):
    labels = _labels()
    write_idx(tmp_path / "plain", labels)
    # a gzip file without .gz suffix still loads
    (tmp_path / "compressed-without-suffix").write_bytes(gzip.compress((tmp_path / "plain").read_bytes()))
    np.testing.assert_array_equal(read_idx_labels(tmp_path / "compressed-without-suffix"), labels)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_other_dtypes_round_trip_in_native_order(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    write_idx(tmp_path / "a.idx", array)
    loaded = read_idx(tmp_path / "a.idx")
    assert loaded.dtype == np.dtype(dtype) and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)


def test_bad_magic_is_named(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, _labels())  # a label file where images are expected
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*magic number 2049.*expected 2051"):
        read_idx_images(path)
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x12\x34\x56\x78" + bytes(20))
    with pytest.raises(ValueError, match="garbage.*not a valid IDX header"):
        read_idx(garbage)


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_data_is_reported(tmp_path, compress):
    path = tmp_path / "images"
    write_idx(path, _images())
    content = path.read_bytes()[:-100]
    if compress:
        content = gzip.compress(content)
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"'.*images'.*truncated.*\(7, 28, 28\)"):
        read_idx_images(path)


def test_truncated_header_and_tiny_file(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 7]))  # claims 3 dims, has 1
    with pytest.raises(ValueError, match="short.*truncated header"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="short.*too short"):
        read_idx(path)


def test_wrong_count_and_trailing_bytes(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, _labels(5))
    content = bytearray(path.read_bytes())
    content[7] = 6  # header says 6 labels, 5 present
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="labels.*truncated.*\\(6,\\)"):
        read_idx_labels(path)
    content[7] = 4  # header says 4, one byte too many
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="labels.*trailing bytes"):
        read_idx_labels(path)


def test_truncated_gzip_stream_is_reported(tmp_path):
    path = tmp_path / "images.gz"
    write_idx(path, _images())
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ValueError, match="images.gz.*gzip data is corrupt or truncated"):
        read_idx_images(path)


def test_write_idx_refuses_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


# -- Fashion-MNIST loading ------------------------------------------------------------------


@pytest.fixture
def no_default_sources(tmp_path, monkeypatch):
    """Point every implicit source at empty places, so only what a test provides is found."""
    for variable in data.DATA_DIR_ENV_VARS:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", str(tmp_path / "no-system-dir"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))

    def refuse(*args, **kwargs):
        raise AssertionError("the test tried to use the network")

    monkeypatch.setattr(data.urllib.request, "urlopen", refuse)
    return tmp_path


@pytest.mark.parametrize("compress", [False, True])
def test_load_fashion_mnist_from_explicit_dir(tmp_path, compress):
    images, labels = _images(9), _labels(9)
    _write_split(str(tmp_path), "test", images, labels, compress)
    x, y = data.load_fashion_mnist("test", data_dir=tmp_path, download=False)
    assert x.shape == (9, 28, 28, 1) and x.dtype == np.float32
    assert y.shape == (9,) and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x[..., 0] * 255.0, images, atol=1e-4)
    np.testing.assert_array_equal(y, labels)
    x, y = data.load_fashion_mnist("test", data_dir=tmp_path, limit=4)
    assert x.shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(y, labels[:4])


def test_explicit_dir_without_files_does_not_fall_through(no_default_sources):
    empty = no_default_sources / "empty"
    empty.mkdir()
    with pytest.raises(data.DatasetNotFoundError, match="empty.*lacks.*t10k-images-idx3-ubyte"):
        data.load_fashion_mnist("test", data_dir=empty)


def test_env_var_then_cache_are_searched(no_default_sources, monkeypatch):
    env_dir = no_default_sources / "from-env"
    env_dir.mkdir()
    _write_split(str(env_dir), "test", _images(3), _labels(3))
    monkeypatch.setenv("FASHION_MNIST_DIR", str(env_dir))
    assert data.find_fashion_mnist(splits=("test",), download=False) == str(env_dir)
    # the training split is not there: the search moves on to the cache
    cache = data.default_cache_dir()
    os.makedirs(cache)
    _write_split(cache, "train", _images(4), _labels(4), compress=False)
    assert data.find_fashion_mnist(splits=("train",), download=False) == cache
    x, _ = data.load_fashion_mnist("train", download=False)
    assert x.shape == (4, 28, 28, 1)


def test_not_found_error_lists_every_option(no_default_sources, monkeypatch):
    monkeypatch.setenv("AUTOGRAD_CORE_DATA_DIR", str(no_default_sources / "nowhere"))
    with pytest.raises(data.DatasetNotFoundError) as caught:
        data.load_fashion_mnist("train", download=False)
    message = str(caught.value)
    for expected in ["$AUTOGRAD_CORE_DATA_DIR", "nowhere", "no-system-dir", "cache-home",
                     "download disabled", "apt-get install dataset-fashion-mnist",
                     "--data-dir", "FASHION_MNIST_DIR"]:
        assert expected in message, expected


class _FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_checks_md5_and_falls_through_on_mismatch(no_default_sources, monkeypatch):
    write_idx(no_default_sources / "labels.gz", _labels(3))
    write_idx(no_default_sources / "images.gz", _images(3))
    served = {"t10k-labels-idx1-ubyte.gz": (no_default_sources / "labels.gz").read_bytes(),
              "t10k-images-idx3-ubyte.gz": (no_default_sources / "images.gz").read_bytes()}
    requested = []

    def fake_urlopen(url, timeout):
        requested.append(url)
        return _FakeResponse(served[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    # The served bytes are not the official files: the checksum refuses them.
    with pytest.raises(data.DatasetNotFoundError, match="MD5 .* does not match"):
        data.load_fashion_mnist("test")
    cache = data.default_cache_dir()
    assert not os.path.exists(os.path.join(cache, "t10k-images-idx3-ubyte.gz"))
    assert not os.listdir(cache)  # no temporary or partial file left behind
    # With checksums that match what is served, the download lands in the cache.
    checksums = {name: hashlib.md5(content).hexdigest() for name, content in served.items()}
    monkeypatch.setattr(data, "DOWNLOAD_MD5", checksums)
    x, y = data.load_fashion_mnist("test")
    assert x.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(y, _labels(3))
    assert all(url.startswith(data.DOWNLOAD_URL) for url in requested)
    assert sorted(os.listdir(cache)) == sorted(served)


def test_network_failure_falls_through_to_clear_error(no_default_sources, monkeypatch):
    def offline(url, timeout):
        raise data.urllib.error.URLError("no route to host")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(data.DatasetNotFoundError, match="(?s)download from .* failed.*no route.*apt-get"):
        data.load_fashion_mnist("test")


def test_images_and_labels_must_agree(tmp_path):
    _write_split(str(tmp_path), "test", _images(5), _labels(4))
    with pytest.raises(ValueError, match="5 images but .*4 labels"):
        data.load_fashion_mnist("test", data_dir=tmp_path)
    _write_split(str(tmp_path), "test", _images(4), np.array([1, 2, 10, 3], np.uint8))
    with pytest.raises(ValueError, match="label 10 out of range"):
        data.load_fashion_mnist("test", data_dir=tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((4, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="32x32, expected 28x28"):
        data.load_fashion_mnist("test", data_dir=tmp_path)


def test_unknown_split_and_bad_limit(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        data.load_fashion_mnist("valid", data_dir=tmp_path)
    with pytest.raises(ValueError, match="limit"):
        data.load_fashion_mnist("test", data_dir=tmp_path, limit=0)


# -- DataLoader -------------------------------------------------------------------------------


def test_sequential_batches_cover_the_data_in_order():
    x = np.arange(10 * 2).reshape(10, 2)
    y = np.arange(10)
    loader = DataLoader(x, y, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 == len(batches)
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert all(isinstance(batch, tuple) and len(batch) == 2 for batch in batches)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)


def test_single_array_still_yields_tuples():
    batches = list(DataLoader(np.arange(5), batch_size=2))
    assert [b[0].tolist() for b in batches] == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("count,batch_size,expected", [(10, 4, 2), (12, 4, 3), (3, 4, 0)])
def test_drop_last(count, batch_size, expected):
    loader = DataLoader(np.arange(count), batch_size=batch_size, drop_last=True)
    batches = list(loader)
    assert len(loader) == expected == len(batches)
    assert all(len(b[0]) == batch_size for b in batches)


def test_shuffle_is_a_permutation_kept_aligned_across_arrays():
    x = np.arange(50) * 10
    y = np.arange(50)
    loader = DataLoader(x, y, batch_size=8, shuffle=True, seed=3)
    xs, ys = zip(*loader)
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    np.testing.assert_array_equal(xs, ys * 10)  # rows stay paired
    assert sorted(ys.tolist()) == list(range(50))
    assert ys.tolist() != list(range(50))


def _epoch_orders(loader, epochs):
    return [np.concatenate([batch[0] for batch in loader]).tolist() for _ in range(epochs)]


def test_seeded_shuffle_reproducible_and_reshuffles_each_epoch():
    orders = _epoch_orders(DataLoader(np.arange(40), batch_size=7, shuffle=True, seed=11), 3)
    again = _epoch_orders(DataLoader(np.arange(40), batch_size=7, shuffle=True, seed=11), 3)
    other = _epoch_orders(DataLoader(np.arange(40), batch_size=7, shuffle=True, seed=12), 3)
    assert orders == again
    assert orders[0] != orders[1] != orders[2]
    assert orders != other


def test_set_epoch_replays_an_epochs_order():
    loader = DataLoader(np.arange(30), batch_size=5, shuffle=True, seed=0)
    orders = _epoch_orders(loader, 3)
    resumed = DataLoader(np.arange(30), batch_size=5, shuffle=True, seed=0)
    resumed.set_epoch(2)
    assert _epoch_orders(resumed, 1)[0] == orders[2]


def test_shuffle_with_drop_last_uses_full_batches_only():
    loader = DataLoader(np.arange(23), batch_size=5, shuffle=True, seed=1, drop_last=True)
    seen = np.concatenate([b[0] for b in loader])
    assert len(seen) == 20 and len(set(seen.tolist())) == 20


def test_dataloader_argument_errors():
    with pytest.raises(ValueError, match="at least one array"):
        DataLoader(batch_size=2)
    with pytest.raises(ValueError, match=r"differ in length.*\[3, 4\]"):
        DataLoader(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="0-d"):
        DataLoader(np.float32(3.0))


@given(count=st.integers(0, 60), batch_size=st.integers(1, 17), shuffle=st.booleans(),
       drop_last=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_dataloader_batches_partition_the_examples(count, batch_size, shuffle, drop_last, seed):
    loader = DataLoader(np.arange(count), np.arange(count) * 2, batch_size=batch_size, shuffle=shuffle,
                        seed=seed, drop_last=drop_last)
    batches = list(loader)
    assert len(batches) == len(loader)
    sizes = [len(first) for first, _ in batches]
    assert all(size == batch_size for size in sizes[:-1])
    if drop_last:
        assert len(batches) == count // batch_size and all(size == batch_size for size in sizes)
    else:
        assert sum(sizes) == count
    seen = np.concatenate([first for first, _ in batches]) if batches else np.array([], int)
    assert len(set(seen.tolist())) == len(seen) == sum(sizes)  # no example twice
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(sum(sizes)))
    for first, second in batches:
        np.testing.assert_array_equal(second, first * 2)


# -- crafted files cannot force huge memory ----------------------------------------------


def _gzip_bomb(path, count, zero_megabytes):
    """A gzip IDX file: a valid header for `count` 28x28 images, then that many MiB of zeros."""
    import zlib

    header = bytes([0, 0, 8, 3]) + b"".join(size.to_bytes(4, "big") for size in (count, 28, 28))
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    with open(path, "wb") as stream:
        stream.write(compressor.compress(header))
        for _ in range(zero_megabytes):
            stream.write(compressor.compress(chunk))
        stream.write(compressor.flush())


_MEASURE_READ = """
import resource, sys
from nn import data
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    data.read_idx(sys.argv[1])
except ValueError as error:
    print("ValueError", error)
print("growth_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_gzip_bomb_is_refused_without_decompressing_it(tmp_path):
    # 160 MiB of zeros compress to 160 KiB; decompressing it whole (as the loader once did)
    # costs 160+ MiB, streaming after the header costs at most a chunk past the 7,840 bytes
    # the header implies
    bomb = tmp_path / "bomb.gz"
    _gzip_bomb(bomb, 10, 160)
    assert bomb.stat().st_size < 300_000
    result = subprocess.run([sys.executable, "-c", _MEASURE_READ, str(bomb)], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "has trailing bytes" in result.stdout and str(bomb) in result.stdout
    growth_mib = int(result.stdout.split("growth_kib")[1]) / 1024
    assert growth_mib < 24, f"reading a {bomb.stat().st_size}-byte file grew the memory by {growth_mib:.0f} MiB"


def test_header_claiming_more_than_gzip_can_hold_is_refused_before_reading(tmp_path):
    bomb = tmp_path / "claims.gz"
    _gzip_bomb(bomb, 2_000_000, 0)   # 1.5 GB claimed, a few dozen bytes present
    with pytest.raises(ValueError, match="truncated: .*more than a gzip file of"):
        data.read_idx(bomb)
    raw = tmp_path / "claims.raw"
    raw.write_bytes(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (2_000_000, 28, 28)) + b"\0" * 10)
    with pytest.raises(ValueError, match="truncated: .* file has 26"):
        data.read_idx(raw)


@pytest.mark.parametrize("extra", [1, 3 << 20])
def test_gzip_data_longer_or_shorter_than_the_header_is_named(tmp_path, extra):
    path = tmp_path / "images.gz"
    images = _images(3)
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
    path.write_bytes(gzip.compress(header + images.tobytes() + bytes(extra)))
    message = "has at least" if extra > (1 << 20) else f"has {len(header) + images.size + extra}"
    with pytest.raises(ValueError, match=f"{path.name}.*has trailing bytes.*{message}"):
        data.read_idx(path)
    path.write_bytes(gzip.compress(header + images.tobytes()[:-5]))
    with pytest.raises(ValueError, match=f"{path.name}.*truncated.*has {len(header) + images.size - 5}"):
        data.read_idx(path)


def test_multi_byte_idx_read_in_chunks_keeps_values(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_READ_CHUNK_BYTES", 7)   # chunks that split values
    array = np.arange(-50, 50, dtype=np.int32).reshape(4, 25) * 1000003
    for name in ("a.idx", "a.idx.gz"):
        data.write_idx(tmp_path / name, array)
        loaded = data.read_idx(tmp_path / name)
        assert loaded.dtype == np.int32 and loaded.dtype.isnative
        np.testing.assert_array_equal(loaded, array)
