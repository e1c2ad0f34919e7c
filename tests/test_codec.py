"""The wire format for arrays (``_codec``, the mirror of js/codec.ts): numpy ⇄ {dtype, shape,
buffer}, never JSON lists."""

import json

import numpy as np
import pytest

from residual_widgets import _codec


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        np.array([np.nan, np.inf, -np.inf, -0.0, 1e-30], dtype=np.float32),
        np.zeros((0, 3), dtype=np.float32),
        np.array(3.5, dtype=np.float32),
        np.array([[True, False], [False, True]]),
        np.arange(5, dtype=np.uint8),
        np.arange(-3, 3, dtype=np.int64),
    ],
)
def test_round_trip_exact(arr):
    d = _codec.encode(arr)
    assert isinstance(d["buffer"], memoryview)
    assert d["shape"] == list(arr.shape)
    back = _codec.decode(d)
    assert back.shape == arr.shape
    np.testing.assert_array_equal(back, arr.astype(back.dtype))


def test_dtypes_on_the_wire():
    assert _codec.encode(np.ones(2, np.float64))["dtype"] == "float32"
    assert _codec.encode(np.ones(2, bool))["dtype"] == "bool"
    assert _codec.encode(np.ones(2, np.int16))["dtype"] == "int32"
    assert _codec.encode([1.0, 2.0])["dtype"] == "float32"
    with pytest.raises(TypeError, match="cannot encode"):
        _codec.encode(np.array(["a"]))


def test_little_endian_c_order_bytes():
    a = np.asfortranarray(np.arange(6, dtype=">f4").reshape(2, 3))
    d = _codec.encode(a)
    assert bytes(d["buffer"]) == np.arange(6, dtype="<f4").tobytes()


def test_float16_on_request():
    a = np.linspace(0, 2, 1000, dtype=np.float32)
    d = _codec.encode(a, half=True)
    assert d["dtype"] == "float16" and len(d["buffer"]) == 2000
    np.testing.assert_allclose(_codec.decode(d), a, rtol=1e-3)
    big = _codec.encode(np.array([1e9], np.float32), half=True)
    assert np.isfinite(_codec.decode(big)).all()  # clipped, not inf


def test_torch_tensors_and_none():
    torch = pytest.importorskip("torch")
    d = _codec.encode(torch.arange(4, dtype=torch.float32))
    np.testing.assert_array_equal(_codec.decode(d), [0, 1, 2, 3])
    assert _codec.encode_maybe(None) is None


def test_bad_buffers_are_rejected_in_words():
    d = _codec.encode(np.ones(4, np.float32))
    d["shape"] = [5]
    with pytest.raises(ValueError, match="needs 5 elements"):
        _codec.decode(d)
    with pytest.raises(TypeError, match="unknown wire dtype"):
        _codec.decode({"dtype": "complex", "shape": [1], "buffer": b"12345678"})


def test_buffers_leave_the_json():
    """ipywidgets moves memoryviews out of the state: the JSON part holds no numbers."""
    from ipywidgets.widgets.widget import _remove_buffers

    state = {"atlas": {"resid_delta": _codec.encode(np.ones((3, 4, 3, 4), np.float32))}}
    clean, paths, buffers = _remove_buffers(state)
    assert paths == [["atlas", "resid_delta", "buffer"]]
    assert len(buffers[0]) == 3 * 4 * 3 * 4 * 4
    assert len(json.dumps(clean)) < 200


def test_the_edges_the_mutation_run_found_untested():
    torch = pytest.importorskip("torch")
    w = torch.ones(3, requires_grad=True)  # a tensor that numpy cannot take without detach()
    np.testing.assert_array_equal(_codec.decode(_codec.encode(w * 2)), [2, 2, 2])
    low = _codec.decode(_codec.encode(np.array([-1e9, 1e9], np.float32), half=True))
    assert low.tolist() == [-65504.0, 65504.0]  # both ends clipped to float16's finite range
    assert _codec.encode_maybe(np.ones(2), half=True)["dtype"] == "float16"  # options pass on
    flags = _codec.decode(_codec.encode(np.array([True, False])))
    assert flags.dtype == bool and flags.tolist() == [True, False]
    scalar = _codec.decode(_codec.encode(np.float32(2.5)))
    assert scalar.shape == () and float(scalar) == 2.5
