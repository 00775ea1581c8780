"""gcomp.data (datasets, samplers, DataLoader, collation, IDX/MNIST/digits) and gcomp.save /
gcomp.load_state."""

from __future__ import annotations

import gzip
import os
import sys
from collections import namedtuple

import numpy as np
import pytest

import gcomp
from gcomp import GcompError
from gcomp.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)
from gcomp.data.datasets import MNIST, Digits, load_digits, read_idx


class Numbers(Dataset):
    """Sample i is (float32 array [i, i], i)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.full(2, i, dtype=np.float32), i


def _labels(loader):
    return [int(v) for _, y in loader for v in y.tolist()]


# -- DataLoader ---------------------------------------------------------------------------------
def test_order_without_shuffle_and_drop_last():
    loader = DataLoader(Numbers(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    x, y = batches[0]
    assert x.shape == (4, 2) and x.dtype == gcomp.float32 and y.dtype == gcomp.int64
    np.testing.assert_array_equal(x.numpy()[:, 0], [0, 1, 2, 3])
    dropped = DataLoader(Numbers(10), batch_size=4, drop_last=True)
    assert len(dropped) == 2 and _labels(dropped) == list(range(8))
    unbatched = list(DataLoader(Numbers(3), batch_size=None))
    assert unbatched[2][1] == 2 and unbatched[2][0].shape == (2,)


@pytest.mark.parametrize("make_generator", [lambda: 7, lambda: gcomp.Generator(7)],
                         ids=["int_seed", "generator"])
def test_shuffle_is_a_seeded_permutation(make_generator):
    a = DataLoader(Numbers(20), batch_size=6, shuffle=True, generator=make_generator())
    b = DataLoader(Numbers(20), batch_size=6, shuffle=True, generator=make_generator())
    a1, a2 = _labels(a), _labels(a)
    assert sorted(a1) == list(range(20)) and sorted(a2) == list(range(20))
    assert a1 != list(range(20))
    assert a1 != a2  # each epoch has its own order
    assert (_labels(b), _labels(b)) == (a1, a2)  # the same seed gives the same epochs
    assert _labels(DataLoader(Numbers(20), batch_size=6, shuffle=True, generator=8)) != a1


def test_shuffle_without_generator_follows_manual_seed():
    gcomp.manual_seed(3)
    first = _labels(DataLoader(Numbers(12), batch_size=5, shuffle=True))
    gcomp.manual_seed(3)
    assert _labels(DataLoader(Numbers(12), batch_size=5, shuffle=True)) == first


def test_tensor_dataset_batches():
    x = gcomp.arange(20).float().reshape(10, 2)
    y = gcomp.arange(10)
    ds = TensorDataset(x, y)
    assert len(ds) == 10 and ds[3][1].item() == 3
    batches = list(DataLoader(ds, batch_size=4, shuffle=True, generator=1))
    order = [v for _, yb in batches for v in yb.tolist()]
    assert sorted(order) == list(range(10))
    for xb, yb in batches:  # the fast path gives what per-sample collation gives
        np.testing.assert_array_equal(xb.numpy(), x.numpy()[yb.numpy()])
    ref = default_collate([ds[i] for i in batches[0][1].tolist()])
    np.testing.assert_array_equal(ref[0].numpy(), batches[0][0].numpy())
    with pytest.raises(GcompError, match="Size mismatch"):
        TensorDataset(x, gcomp.arange(3))


def test_default_collate_structures():
    Point = namedtuple("Point", "x y")
    batch = [{"a": 1.0, "b": (np.ones(2, np.float32), 3), "c": "s0", "d": True,
              "p": Point(1, 2.5), "t": gcomp.tensor([1, 2]), "n": np.int32(4)},
             {"a": 2.0, "b": (np.zeros(2, np.float32), 4), "c": "s1", "d": False,
              "p": Point(3, 4.5), "t": gcomp.tensor([3, 4]), "n": np.int32(5)}]
    out = default_collate(batch)
    assert out["a"].dtype == gcomp.float64 and out["a"].tolist() == [1.0, 2.0]
    assert isinstance(out["b"], list)  # a tuple sample gives a list, as in torch
    assert out["b"][0].shape == (2, 2) and out["b"][0].dtype == gcomp.float32
    assert out["b"][1].dtype == gcomp.int64 and out["b"][1].tolist() == [3, 4]
    assert out["c"] == ["s0", "s1"]
    assert out["d"].dtype == gcomp.bool and out["d"].tolist() == [True, False]
    assert isinstance(out["p"], Point) and out["p"].y.tolist() == [2.5, 4.5]
    assert out["t"].tolist() == [[1, 2], [3, 4]]
    assert out["n"].dtype == gcomp.int32
    with pytest.raises(GcompError, match="equal size"):
        default_collate([(1, 2), (3,)])
    with pytest.raises(GcompError, match="found NoneType"):
        default_collate([None, None])


def test_prefetch_gives_the_same_batches_and_propagates_errors():
    plain = DataLoader(Numbers(23), batch_size=5, shuffle=True, generator=4)
    pre = DataLoader(Numbers(23), batch_size=5, shuffle=True, generator=4, prefetch=True)
    for a, b in zip(plain, pre, strict=True):
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
        assert a[1].tolist() == b[1].tolist()
    it = iter(DataLoader(Numbers(100), batch_size=2, prefetch=True))
    next(it)
    it.close()  # stopping early does not hang

    class Broken(Numbers):
        def __getitem__(self, i):
            if i == 7:
                raise ValueError("bad sample 7")
            return super().__getitem__(i)

    with pytest.raises(ValueError, match="bad sample 7"):
        list(DataLoader(Broken(10), batch_size=3, prefetch=True))
    with pytest.warns(UserWarning, match="prefetch"):
        loader = DataLoader(Numbers(4), batch_size=2, num_workers=2)
    assert _labels(loader) == [0, 1, 2, 3]


def test_a_dataset_of_gcomp_ops_prefetches_while_the_main_thread_compiles():
    """Note [Tracing and threads]: the prefetch thread's ops never land in the main thread's
    trace (before the trace lock, this failed or crashed the process every run)."""
    x = np.random.default_rng(0).standard_normal((120, 4)).astype(np.float32)

    class Doubled(Dataset):
        def __init__(self):
            self.x = gcomp.tensor(x)

        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return self.x[i] * 2  # gcomp ops in the background thread

    with pytest.warns(UserWarning, match="prefetch"):
        loader = DataLoader(Doubled(), batch_size=8, num_workers=2)
    for n, xb in enumerate(loader):
        def f(t, n=n):  # a fresh function: every batch traces while the thread fetches
            for _ in range(20):
                t = gcomp.sin(t) + n
            return t.sum(0)

        ref = 2 * x[8 * n:8 * n + 8]
        for _ in range(20):
            ref = np.sin(ref) + n
        np.testing.assert_allclose(gcomp.compile(f)(xb).numpy(), ref.sum(0), rtol=1e-4, atol=1e-4)
    assert n == 14

    def inside(t):
        for b in DataLoader(Numbers(4), batch_size=2, prefetch=True):
            t = t + b[0].sum()
        return t

    with pytest.raises(GcompError, match="iterate it outside the compiled function"):
        gcomp.compile(inside)(gcomp.zeros(()))


def test_iterable_dataset_and_custom_collate():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(7))

        def __len__(self):
            return 7

    loader = DataLoader(Stream(), batch_size=3)
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6]] and len(loader) == 3
    assert len(list(DataLoader(Stream(), batch_size=3, drop_last=True))) == 2
    with pytest.raises(GcompError, match="shuffle"):
        DataLoader(Stream(), shuffle=True)
    summed = DataLoader(Numbers(6), batch_size=3, collate_fn=lambda b: sum(y for _, y in b))
    assert list(summed) == [3, 12]


def test_random_split_subset_concat():
    ds = Numbers(10)
    parts = random_split(ds, [3, 7], generator=gcomp.Generator(1))
    assert [len(p) for p in parts] == [3, 7]
    idx = parts[0].indices + parts[1].indices
    assert sorted(idx) == list(range(10))  # disjoint and covering
    again = random_split(ds, [3, 7], generator=gcomp.Generator(1))
    assert again[0].indices == parts[0].indices
    fracs = random_split(Numbers(11), [0.5, 0.3, 0.2], generator=0)
    assert [len(p) for p in fracs] == [6, 3, 2]  # floors 5, 3, 2; the remainder goes first
    assert not set(fracs[0].indices) & set(fracs[1].indices)
    with pytest.raises(GcompError, match="Sum of input lengths"):
        random_split(ds, [3, 3])
    sub = Subset(ds, [4, 2])
    assert sub[1][1] == 2 and len(sub) == 2
    cat = ds + Numbers(3)
    assert isinstance(cat, ConcatDataset) and len(cat) == 13
    assert cat[11][1] == 1 and cat[-1][1] == 2 and cat[9][1] == 9
    assert gcomp.utils.data.DataLoader is DataLoader


# -- IDX, MNIST, digits -------------------------------------------------------------------------
def _write_idx(path, arr, code=0x08, compress=False):
    header = bytes([0, 0, code, arr.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in arr.shape)
    big = {0x08: ">u1", 0x0D: ">f4", 0x0C: ">i4"}[code]
    raw = header + arr.astype(big).tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if compress else raw)


def test_read_idx(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "img", images)
    _write_idx(tmp_path / "img.gz", images, compress=True)
    floats = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    _write_idx(tmp_path / "f", floats, code=0x0D)
    np.testing.assert_array_equal(read_idx(tmp_path / "img"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "img.gz"), images)
    out = read_idx(tmp_path / "f")
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, floats)


def test_read_idx_errors(tmp_path):
    images = np.zeros((4, 3, 3), np.uint8)
    _write_idx(tmp_path / "img", images)
    raw = (tmp_path / "img").read_bytes()
    cases = {"short": (raw[:20], "truncated: shape \\[4, 3, 3\\]"),
             "tiny": (raw[:2], "truncated"),
             "header": (raw[:9], "truncated header"),
             "magic": (b"\x08\x03" + raw[2:], "not an IDX file"),
             "dtype": (raw[:2] + b"\x07" + raw[3:], "unknown data type"),
             "extra": (raw + b"\x00", "trailing bytes"),
             "gzip": (gzip.compress(raw)[:-10], "gzip")}
    for name, (data, message) in cases.items():
        path = tmp_path / f"bad_{name}"
        path.write_bytes(data)
        with pytest.raises(GcompError, match=message) as e:
            read_idx(path)
        assert str(path) in str(e.value)
    with pytest.raises(GcompError, match="cannot read"):
        read_idx(tmp_path / "missing")


def test_mnist_from_local_files(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 6).astype(np.uint8)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / "train-images-idx3-ubyte.gz", images, compress=True)
    _write_idx(raw / "train-labels-idx1-ubyte", labels)
    ds = MNIST(tmp_path, train=True)
    assert len(ds) == 6
    image, label = ds[2]
    assert image.shape == (1, 28, 28) and image.dtype == np.float32 and label == labels[2]
    np.testing.assert_allclose(image[0], images[2] / 255.0, rtol=1e-6)
    assert ds.data.dtype == gcomp.uint8 and ds.targets.dtype == gcomp.int64
    x, y = next(iter(DataLoader(ds, batch_size=4, prefetch=True)))
    assert x.shape == (4, 1, 28, 28) and y.tolist() == labels[:4].tolist()
    with pytest.raises(GcompError, match="t10k-images-idx3-ubyte"):
        MNIST(tmp_path, train=False)
    _write_idx(raw / "train-labels-idx1-ubyte", labels[:5])
    with pytest.raises(GcompError, match="expected 6 labels"):
        MNIST(tmp_path, train=True)


def test_digits():
    images, labels = load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == gcomp.float32
    assert labels.shape == (1797,) and labels.dtype == gcomp.int64
    assert 0.0 <= images.min().item() and images.max().item() == 1.0
    assert sorted(set(labels.tolist())) == list(range(10))
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) + len(test) == 1797 and len(test) == round(1797 * 0.2)
    image, label = train[0]
    assert image.shape == (1, 8, 8) and image.dtype == np.float32 and isinstance(label, int)
    assert Digits(train=False, seed=0).labels.tolist() == test.labels.tolist()
    assert Digits(train=False, seed=1).labels.tolist() != test.labels.tolist()


def test_digits_without_sklearn(monkeypatch):
    from gcomp.data import datasets

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    datasets._sklearn_digits.cache_clear()
    with pytest.raises(GcompError, match="pip install scikit-learn"):
        load_digits()
    with pytest.raises(GcompError, match="pip install scikit-learn"):
        Digits()


# -- save / load_state --------------------------------------------------------------------------
def _state():
    return {
        "model": {"fc.weight": gcomp.tensor(np.arange(6, dtype=np.float32).reshape(2, 3)),
                  "fc.bias": gcomp.tensor([0.5, -0.5], requires_grad=True),
                  "steps": gcomp.tensor(7), "mask": gcomp.tensor([True, False]),
                  "half": gcomp.tensor([1.5, 2.0], dtype=gcomp.bfloat16),
                  "double": gcomp.tensor([1e-300], dtype=gcomp.float64)},
        "optimizer": {"state": {0: {"step": gcomp.tensor(3.0)}},
                      "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "foreach": None,
                                        "params": [0, 1], "name": "g", "flag": True}]},
        "numbers": [1, 2.5, float("inf"), float("nan")],
        "array": np.arange(4, dtype=np.int32),
    }


def test_save_load_round_trip(tmp_path):
    path = tmp_path / "ckpt.pt"
    gcomp.save(_state(), path)
    out = gcomp.load_state(path)
    ref = _state()
    for k, t in ref["model"].items():
        assert out["model"][k].dtype == t.dtype and out["model"][k].shape == t.shape
        np.testing.assert_array_equal(np.asarray(out["model"][k].detach().to(gcomp.float64)
                                                 if t.dtype.is_floating_point else
                                                 out["model"][k]),
                                      np.asarray(t.detach().to(gcomp.float64)
                                                 if t.dtype.is_floating_point else t))
    assert out["model"]["fc.bias"].requires_grad
    group = out["optimizer"]["param_groups"][0]
    assert group == {"lr": 0.1, "betas": (0.9, 0.999), "foreach": None, "params": [0, 1],
                     "name": "g", "flag": True}
    assert list(out["optimizer"]["state"]) == [0] and out["optimizer"]["state"][0][
        "step"].item() == 3.0
    assert out["numbers"][:3] == [1, 2.5, float("inf")] and np.isnan(out["numbers"][3])
    assert out["array"].dtype == gcomp.int32 and out["array"].tolist() == [0, 1, 2, 3]
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # no temporary file left behind
    with pytest.raises(GcompError, match="a set"):
        gcomp.save({"x": {1, 2}}, tmp_path / "bad.npz")


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    gcomp.save({"w": gcomp.tensor([1.0, 2.0])}, path)
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        gcomp.save({"w": gcomp.tensor([3.0, 4.0])}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert gcomp.load_state(path)["w"].tolist() == [1.0, 2.0]


def test_load_state_rejects_damaged_files(tmp_path):
    path = tmp_path / "ckpt.npz"
    gcomp.save({"w": gcomp.arange(1000).float()}, path)
    raw = path.read_bytes()
    damaged = {"truncated": raw[: len(raw) // 2], "garbage": b"not a checkpoint at all",
               "empty": b"", "flipped": raw[:600] + bytes([raw[600] ^ 0xFF]) + raw[601:]}
    for name, data in damaged.items():
        bad = tmp_path / f"{name}.npz"
        bad.write_bytes(data)
        with pytest.raises(GcompError, match="truncated or corrupt") as e:
            gcomp.load_state(bad)
        assert str(bad) in str(e.value)
    np.savez(tmp_path / "foreign.npz", x=np.ones(2))
    with pytest.raises(GcompError, match="not one written by gcomp.save"):
        gcomp.load_state(tmp_path / "foreign.npz")
    with pytest.raises(GcompError, match="no such file"):
        gcomp.load_state(tmp_path / "missing.npz")
