"""The vectorised HMAC-SHA256 (DataFusion) against Python's hmac, value by value."""

import hashlib
import hmac
import random

import pyarrow as pa
import pytest

from skadestue.keyed_hash import hmac_digest, hmac_hex, pads

TEXTS = ["", None, "æøå 050387-1234", "a\x00b", "𝟘𝟙 emoji 🚲", "x" * 1000, "Ankomst;SVS Esbjerg", "\n", "6" * 64]
KEYS = [b"k", b"6" * 10, b"x" * 64, b"y" * 65, "nøgle".encode(), bytes(range(256))]


def _want(values, key):
    return [None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values]


@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_hmac_hex_is_hmac_sha256(key):
    assert hmac_hex(pa.array(TEXTS, pa.string()), key).to_pylist() == _want(TEXTS, key)
    digests = hmac_digest(pa.array(TEXTS, pa.string()), key)
    assert digests.type == pa.binary()
    assert [None if d is None else d.hex() for d in digests.to_pylist()] == _want(TEXTS, key)


def test_hmac_hex_keeps_order_and_nulls_over_many_chunks_and_partitions():
    rng = random.Random(7)
    values = [None if rng.random() < 0.1 else "".join(rng.choices("0123456789-; æø", k=rng.randint(0, 80)))
              for _ in range(120_000)]  # enough rows for one partition per core
    chunked = pa.chunked_array([pa.array(values[i:i + 7_000], pa.large_string()) for i in range(0, len(values), 7_000)])
    got = hmac_hex(chunked, b"key")
    assert got.type == pa.string() and len(got) == len(values)
    assert got.to_pylist() == _want(values, b"key")
    assert got.null_count == sum(v is None for v in values) > 0


def test_hmac_hex_edges():
    assert hmac_hex(pa.array([], pa.string()), b"k").to_pylist() == []
    with pytest.raises(ValueError):
        pads(b"")
    with pytest.raises(TypeError):
        hmac_hex(pa.array([1, 2]), b"k")


@pytest.mark.parametrize("key", KEYS[:3], ids=range(3))
def test_hmac_digest_of_lines_cut_with_their_newline(key):
    lines = [t + "\n" if t is not None else None for t in TEXTS] + ["last line without one", "", "\n"]
    want = _want([None if v is None else v.rstrip("\n") for v in lines], key)
    for arr in (pa.array(lines, pa.string()), pa.chunked_array([pa.array(lines[:4]), pa.array(lines[4:])]),
                pa.array(lines, pa.large_string())):
        got = hmac_digest(arr, key, strip_newline=True)
        assert [None if d is None else d.hex() for d in got.to_pylist()] == want


def test_the_session_keeps_nothing_it_hashed():
    """DataFusion's create_dataframe registers its input as a table: the texts (CPR numbers,
    whole lines) would stay in memory for the life of the process."""
    from skadestue.keyed_hash import _context

    hmac_digest(pa.array(["050387-1234", "a line"] * 10), b"k")
    hmac_hex(pa.array(["0503871234"]), b"k")
    assert _context().catalog().schema().names() == set()
