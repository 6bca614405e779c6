"""Data: Fashion-MNIST from IDX files, and a ``DataLoader`` over numpy arrays.

IDX is the format of MNIST and Fashion-MNIST: a 4-byte magic number (two zero bytes, a
type code, the number of dimensions), one big-endian int32 per dimension, then the raw
values in C order. Image files have magic 2051 (uint8, 3 dims), label files 2049
(uint8, 1 dim). Files may be gzip-compressed or raw; the loader tells them apart by
content, not by name.

:func:`load_fashion_mnist` looks for the four files in this order and uses the first
directory that has them:

1. the ``data_dir`` argument (if given, it must hold the files: no fall-through);
2. the directory named by ``AUTOGRAD_CORE_DATA_DIR`` or ``FASHION_MNIST_DIR``;
3. ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu: ``apt-get install dataset-fashion-mnist``);
4. the user cache ``~/.cache/autograd_core/fashion-mnist`` (``$XDG_CACHE_HOME`` respected);
5. a download from the dataset's official location into that cache, checked against the
   published MD5 checksums (only if ``download=True`` and the network allows).

If all fail, the error lists every place tried and how to provide the data.
"""

import gzip
import hashlib
import math
import os
import tempfile
import urllib.error
import urllib.request
import zlib

import numpy as np

__all__ = [
    "IDX_IMAGES_MAGIC",
    "IDX_LABELS_MAGIC",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_CLASSES",
    "DatasetNotFoundError",
    "read_idx",
    "write_idx",
    "read_idx_images",
    "read_idx_labels",
    "find_fashion_mnist",
    "load_fashion_mnist",
    "DataLoader",
    "DistributedSampler",
]

IDX_IMAGES_MAGIC = 2051  # 0x00000803: uint8, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: uint8, 1 dimension

# IDX type code -> numpy dtype. Multi-byte types are big-endian by the format's definition.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dtype.newbyteorder("=") if dtype.itemsize > 1 else dtype: code
              for code, dtype in _IDX_DTYPES.items()}

# split -> (images file, labels file), as named upstream and by the Debian package
# (without ".gz"; both the compressed and the raw form are accepted).
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_EXPECTED_COUNTS = {"train": 60000, "test": 10000}

DOWNLOAD_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# MD5 of the .gz files as published in the Fashion-MNIST README (the files on the
# official server). Debian re-compresses the files, so its .gz differ; the loader never
# checksums local files, only downloads.
DOWNLOAD_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
SYSTEM_DATA_DIR = "/usr/share/datasets/fashion-mnist"
DATA_DIR_ENV_VARS = ("AUTOGRAD_CORE_DATA_DIR", "FASHION_MNIST_DIR")
_DOWNLOAD_TIMEOUT_S = 30


class DatasetNotFoundError(FileNotFoundError):
    """Fashion-MNIST could not be found or fetched; the message lists what was tried."""


# ---------------------------------------------------------------------------------------
# IDX reading and writing


# Deflate cannot expand data by more than about 1032:1: a gzip file whose header claims
# more than that many times its own size is truncated (or crafted), which is known before
# a byte is decompressed.
_DEFLATE_MAX_RATIO = 1032
# Data are decompressed in chunks of this size straight into the array, so memory grows
# with the data actually present, never with what a (crafted) header claims.
_READ_CHUNK_BYTES = 1 << 20


def read_idx(path, expected_magic=None):
    """Read an IDX file (gzip or raw) into a numpy array in native byte order.

    ``expected_magic`` (e.g. ``IDX_IMAGES_MAGIC``) makes a different magic number an error.
    Raises ``ValueError`` naming the file if the header is malformed or the data size does
    not match the dimensions in the header (truncated or with trailing garbage).

    The header is read first and the data streamed into an array of the size it gives, so
    a small file never costs more memory than the data it really holds (a gzip file is
    decompressed at most one chunk past what the header implies).
    """
    path = os.fspath(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        file_size = os.fstat(raw.fileno()).st_size
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            return _read_idx_stream(stream, path, expected_magic, file_size, compressed)
        except (EOFError, OSError, zlib.error) as error:
            if not compressed:
                raise
            raise ValueError(f"IDX file {path!r}: gzip data is corrupt or truncated ({error})") from error
        finally:
            if compressed:
                stream.close()


def _read_idx_stream(stream, path, expected_magic, file_size, compressed):
    content = stream.read(4)
    if len(content) < 4:
        raise ValueError(
            f"IDX file {path!r}: {len(content)} bytes is too short for the 4-byte magic number"
        )
    magic = int.from_bytes(content[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(
            f"IDX file {path!r}: magic number {magic} (0x{magic:08x}), expected "
            f"{expected_magic} (0x{expected_magic:08x}); wrong file or corrupt"
        )
    type_code, ndim = content[2], content[3]
    if content[:2] != b"\x00\x00" or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"IDX file {path!r}: magic number 0x{magic:08x} is not a valid IDX header "
            "(expected 0x0000TTDD with type code TT in 08,09,0B,0C,0D,0E and DD >= 1 dimensions)"
        )
    header_size = 4 + 4 * ndim
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise ValueError(
            f"IDX file {path!r}: truncated header: {ndim} dimensions need {header_size} bytes, "
            f"file has {4 + len(sizes)}"
        )
    dims = tuple(int.from_bytes(sizes[4 * i: 4 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    data_size = math.prod(dims) * dtype.itemsize
    expected_size = header_size + data_size

    def size_error(actual, at_least=False):
        state = "truncated" if actual < expected_size else "has trailing bytes"
        what = "decompressed data" if compressed else "file"
        return ValueError(
            f"IDX file {path!r}: {state}: dimensions {dims} of {dtype.name} need "
            f"{expected_size} bytes (header included), {what} has {'at least ' if at_least else ''}{actual}"
        )

    if not compressed and file_size != expected_size:
        raise size_error(file_size)
    if compressed and expected_size > _DEFLATE_MAX_RATIO * file_size + 1024:
        raise ValueError(
            f"IDX file {path!r}: truncated: dimensions {dims} of {dtype.name} need {expected_size} "
            f"bytes, more than a gzip file of {file_size} bytes can hold"
        )
    array = np.empty(dims, dtype=dtype)
    view = memoryview(array.reshape(-1).view(np.uint8))
    filled = 0
    while filled < data_size:
        count = stream.readinto(view[filled:filled + _READ_CHUNK_BYTES])
        if not count:
            raise size_error(header_size + filled)
        filled += count
    if stream.read(1):
        # count at most one more chunk: never decompress the rest just to count it
        extra = 1 + len(stream.read(_READ_CHUNK_BYTES))
        raise size_error(expected_size + extra, at_least=extra > _READ_CHUNK_BYTES)
    if dtype.itemsize > 1:
        # big-endian by the format; swapped in place rather than copied
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def write_idx(path, array):
    """Write ``array`` as an IDX file; gzip-compressed if ``path`` ends in ``.gz``.

    Supported dtypes: uint8, int8, int16, int32, float32, float64 (stored big-endian).
    Used by tests and to export slices of a dataset.
    """
    path = os.fspath(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=") if array.dtype.itemsize > 1 else array.dtype
    if native not in _IDX_CODES:
        raise TypeError(
            f"write_idx({path!r}): dtype {array.dtype} has no IDX type code; expected one of "
            "uint8, int8, int16, int32, float32, float64"
        )
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx({path!r}): IDX needs 1 to 255 dimensions, got {array.ndim}")
    code = _IDX_CODES[native]
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape
    )
    content = header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    if path.endswith(".gz"):
        # mtime=0 makes the output byte-for-byte reproducible.
        content = gzip.compress(content, mtime=0)
    with open(path, "wb") as stream:
        stream.write(content)


def read_idx_images(path):
    """Read an IDX image file (magic 2051): uint8 array ``[count, rows, columns]``."""
    images = read_idx(path, IDX_IMAGES_MAGIC)
    if images.ndim != 3:  # cannot happen with the right magic, kept for clarity
        raise ValueError(f"IDX file {os.fspath(path)!r}: expected 3 dimensions, got {images.shape}")
    return images


def read_idx_labels(path):
    """Read an IDX label file (magic 2049): uint8 array ``[count]``."""
    return read_idx(path, IDX_LABELS_MAGIC)


# ---------------------------------------------------------------------------------------
# Finding Fashion-MNIST


def _find_file(directory, name):
    """Return the path of ``name.gz`` or ``name`` in ``directory``, or None."""
    for candidate in (name + ".gz", name):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _missing_files(directory, splits):
    names = [name for split in splits for name in FASHION_MNIST_FILES[split]]
    return [name for name in names if _find_file(directory, name) is None]


def default_cache_dir():
    """``$XDG_CACHE_HOME/autograd_core/fashion-mnist`` (default ``~/.cache/...``)."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache_home, "autograd_core", "fashion-mnist")


def _download(directory, splits, base_url=DOWNLOAD_URL, timeout=_DOWNLOAD_TIMEOUT_S):
    """Download the missing .gz files into ``directory``, verifying their MD5.

    Each file is written to a temporary name and renamed only after its checksum
    matched, so an interrupted download never leaves a file that looks complete.
    Raises ``OSError`` (network, disk) or ``ValueError`` (checksum) on failure.
    """
    os.makedirs(directory, exist_ok=True)
    for name in _missing_files(directory, splits):
        filename = name + ".gz"
        url = base_url + filename
        with urllib.request.urlopen(url, timeout=timeout) as response:
            content = response.read()
        digest = hashlib.md5(content).hexdigest()
        if digest != DOWNLOAD_MD5[filename]:
            raise ValueError(
                f"download {url}: MD5 {digest} does not match the published {DOWNLOAD_MD5[filename]}"
            )
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix="." + filename, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(content)
            os.replace(temporary, os.path.join(directory, filename))
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise


def find_fashion_mnist(data_dir=None, splits=("train", "test"), download=True):
    """Return a directory holding the Fashion-MNIST files for ``splits``.

    Search order as in the module docstring. An explicit ``data_dir`` that lacks the files
    is an error right away (the caller asked for that directory). Otherwise raises
    :class:`DatasetNotFoundError` listing each place tried and why it did not work.
    """
    splits = tuple(splits)
    for split in splits:
        if split not in FASHION_MNIST_FILES:
            raise ValueError(f"find_fashion_mnist: unknown split {split!r}, expected 'train' or 'test'")
    if data_dir is not None:
        data_dir = os.fspath(data_dir)
        missing = _missing_files(data_dir, splits)
        if missing:
            raise DatasetNotFoundError(
                f"Fashion-MNIST: data directory {data_dir!r} lacks {missing} "
                "(each file may be gzip-compressed with a .gz suffix or raw)"
            )
        return data_dir

    tried = []
    candidates = [(f"${variable}", os.environ[variable])
                  for variable in DATA_DIR_ENV_VARS if os.environ.get(variable)]
    candidates.append(("Debian package dataset-fashion-mnist", SYSTEM_DATA_DIR))
    cache_dir = default_cache_dir()
    candidates.append(("user cache", cache_dir))
    for label, directory in candidates:
        missing = _missing_files(directory, splits)
        if not missing:
            return directory
        reason = "does not exist" if not os.path.isdir(directory) else f"lacks {missing}"
        tried.append(f"{label}: {directory} {reason}")

    if download:
        try:
            _download(cache_dir, splits)
            return cache_dir
        except (OSError, ValueError, urllib.error.URLError) as error:
            tried.append(f"download from {DOWNLOAD_URL} into {cache_dir} failed: {error}")
    else:
        tried.append("download disabled")

    raise DatasetNotFoundError(
        "Fashion-MNIST not found. Tried:\n  - " + "\n  - ".join(tried) + "\n"
        "Provide it in one of these ways:\n"
        "  - apt-get install dataset-fashion-mnist   (installs into " + SYSTEM_DATA_DIR + ")\n"
        "  - pass a directory holding the four IDX files (data_dir= / --data-dir)\n"
        "  - set AUTOGRAD_CORE_DATA_DIR (or FASHION_MNIST_DIR) to such a directory\n"
        "  - put the files into " + cache_dir + "\n"
        "  - allow network access so they can be downloaded from " + DOWNLOAD_URL
    )


def load_fashion_mnist(split="train", data_dir=None, download=True, limit=None):
    """Load one split of Fashion-MNIST.

    Returns ``(images, labels)``: images float32 ``[N, 28, 28, 1]`` (NHWC) scaled to
    ``[0, 1]``, labels int64 ``[N]`` in ``0..9``. ``limit`` keeps only the first ``limit``
    examples (smoke tests, quick runs). ``data_dir`` and ``download`` as in
    :func:`find_fashion_mnist`. Files with the right format but another example count
    than the official 60000/10000 are accepted (e.g. a slice written with
    :func:`write_idx`), as long as images and labels agree.
    """
    if split not in FASHION_MNIST_FILES:
        raise ValueError(f"load_fashion_mnist: unknown split {split!r}, expected 'train' or 'test'")
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"load_fashion_mnist: limit must be a positive int or None, got {limit!r}")
    directory = find_fashion_mnist(data_dir, (split,), download)
    images_name, labels_name = FASHION_MNIST_FILES[split]
    images_path = _find_file(directory, images_name)
    labels_path = _find_file(directory, labels_name)
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if images.shape[1:] != (28, 28):
        raise ValueError(
            f"Fashion-MNIST {images_path!r}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Fashion-MNIST {split}: {images_path!r} holds {images.shape[0]} images but "
            f"{labels_path!r} holds {labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(
            f"Fashion-MNIST {labels_path!r}: label {int(labels.max())} out of range, expected 0..9"
        )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    # Scale after slicing: the full training set is 188 MB as float32.
    images = (images.astype(np.float32) / np.float32(255.0))[..., np.newaxis]
    return images, labels.astype(np.int64)


# ---------------------------------------------------------------------------------------
# Batching


class DataLoader:
    """Iterate over aligned numpy arrays in mini-batches.

    ``DataLoader(images, labels, batch_size=100, shuffle=True, seed=0)`` yields tuples
    ``(images[batch], labels[batch])``, one entry per array, each batch indexing the first
    axis. With ``shuffle=True`` every pass (epoch) uses a new permutation; the permutation
    of epoch ``e`` depends only on ``(seed, e)``, so runs are reproducible and a resumed
    run can continue with :meth:`set_epoch`. ``seed=None`` draws a seed from the OS once.
    ``drop_last=True`` skips a final batch smaller than ``batch_size``.

    ``sampler`` (e.g. a :class:`DistributedSampler`): an iterable of example indices with
    a length that gives the order of one pass instead of ``shuffle``; as in torch, it
    cannot be combined with ``shuffle=True``, and its epoch is its own (``set_epoch`` here
    forwards to it).
    """

    def __init__(self, *arrays, batch_size=1, shuffle=False, seed=None, drop_last=False, sampler=None):
        if not arrays:
            raise ValueError("DataLoader: expected at least one array")
        arrays = tuple(np.asarray(array) for array in arrays)
        for index, array in enumerate(arrays):
            if array.ndim == 0:
                raise ValueError(f"DataLoader: array {index} is 0-d; expected a first (example) axis")
        lengths = [len(array) for array in arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"DataLoader: arrays differ in length along the first axis: {lengths}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self.arrays = arrays
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        self.epoch = 0
        if sampler is not None:
            if self.shuffle:
                raise ValueError("DataLoader: sampler and shuffle=True exclude each other (the sampler "
                                 "gives the order; shuffle it there)")
            if not hasattr(sampler, "__iter__") or not hasattr(sampler, "__len__"):
                raise TypeError("DataLoader: sampler must be an iterable of indices with a length, got %s"
                                % type(sampler).__name__)
        self.sampler = sampler

    @property
    def num_examples(self):
        """Examples per pass: the sampler's count when there is one."""
        if self.sampler is not None:
            return len(self.sampler)
        return len(self.arrays[0])

    def __len__(self):
        """Number of batches per epoch."""
        if self.drop_last:
            return self.num_examples // self.batch_size
        return math.ceil(self.num_examples / self.batch_size)

    def set_epoch(self, epoch):
        """Make the next pass use epoch ``epoch``'s permutation (e.g. when resuming)."""
        self.epoch = int(epoch)
        if self.sampler is not None and hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def _order(self, epoch):
        rng = np.random.default_rng([self.seed, epoch])
        return rng.permutation(self.num_examples)

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        order = self._order(epoch) if self.shuffle else None
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
            if len(order) != len(self.sampler):
                raise RuntimeError("DataLoader: the sampler yielded %d indices but has length %d"
                                   % (len(order), len(self.sampler)))
        for batch in range(len(self)):
            start = batch * self.batch_size
            stop = min(start + self.batch_size, len(order) if order is not None else self.num_examples)
            if order is None:
                # Slices are views: no copy for the unshuffled (evaluation) case.
                yield tuple(array[start:stop] for array in self.arrays)
            else:
                indices = order[start:stop]
                yield tuple(array[indices] for array in self.arrays)


class DistributedSampler:
    """The indices of one rank's shard of a data set, as torch's DistributedSampler.

    ``DistributedSampler(dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
    drop_last=False)``: ``dataset`` is its length (an int) or anything with ``len()``;
    ``num_replicas`` and ``rank`` default to the MPI job's (``nn.parallel``). Each epoch
    the indices 0..N-1 are permuted by ``(seed, epoch)`` (the same on every rank), made a
    multiple of ``num_replicas`` long, and rank r takes positions r, r + num_replicas,
    ...: shards are disjoint and together cover the data set. To make the length a
    multiple, ``drop_last=False`` repeats the first indices of the order (a few examples
    are seen twice per epoch), ``drop_last=True`` drops the tail. Call
    :meth:`set_epoch` before each epoch, or every epoch repeats the same order.
    ``len(sampler)`` is the number of indices per rank; :meth:`real_count` how many of
    them are not padding.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        size = dataset if isinstance(dataset, (int, np.integer)) and not isinstance(dataset, bool) else None
        if size is None:
            try:
                size = len(dataset)
            except TypeError:
                raise TypeError("DistributedSampler: dataset must be a length (int) or have len(), got %s"
                                % type(dataset).__name__) from None
        if num_replicas is None or rank is None:
            from . import parallel  # (same layer; imported late: data needs no MPI)
            num_replicas = parallel.get_world_size() if num_replicas is None else num_replicas
            rank = parallel.get_rank() if rank is None else rank
        if size < 0:
            raise ValueError("DistributedSampler: dataset length must be >= 0, got %d" % size)
        if not isinstance(num_replicas, (int, np.integer)) or num_replicas < 1:
            raise ValueError("DistributedSampler: num_replicas must be an int >= 1, got %r" % (num_replicas,))
        if not isinstance(rank, (int, np.integer)) or not 0 <= rank < num_replicas:
            raise ValueError("DistributedSampler: rank must be in [0, %d), got %r" % (num_replicas, rank))
        self.dataset_size, self.num_replicas, self.rank = int(size), int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        if self.drop_last and self.dataset_size % self.num_replicas:
            # torch: ceil((N - R) / R), which is floor(N / R) when R does not divide N
            self.num_samples = self.dataset_size // self.num_replicas
        else:
            self.num_samples = math.ceil(self.dataset_size / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        """The next pass uses epoch ``epoch``'s permutation (the same on every rank)."""
        self.epoch = int(epoch)

    def __len__(self):
        return self.num_samples

    def indices(self):
        """This rank's indices for the current epoch, an int64 array of length len(self)."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.dataset_size)
        else:
            order = np.arange(self.dataset_size)
        if self.total_size > self.dataset_size:
            if self.dataset_size == 0:
                raise ValueError("DistributedSampler: cannot pad an empty data set to %d indices" % self.total_size)
            order = np.resize(order, self.total_size)  # (repeats the order from its start)
        else:
            order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas]

    def real_count(self):
        """How many of this rank's indices are real examples, not padding: the weight of
        this rank's metrics when they are summed over ranks (padding is never counted twice)."""
        if self.total_size <= self.dataset_size:
            return self.num_samples
        return len(range(self.rank, self.dataset_size, self.num_replicas))

    def __iter__(self):
        return iter(self.indices().tolist())
