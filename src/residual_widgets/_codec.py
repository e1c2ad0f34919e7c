"""The wire format: numpy ⇄ the binary arrays the front end decodes (the mirror of ``js/codec.ts``).

An array travels as ``{"dtype": str, "shape": [int, ...], "buffer": memoryview}``. ipywidgets
lifts every ``memoryview``/``bytes`` out of a trait's JSON and sends it as a binary buffer (and
stores it base64-encoded in saved widget state), so arrays are never JSON lists.

* floats go as little-endian ``float32``; ``encode(a, half=True)`` sends ``float16`` instead
  (half the bytes, ~3 significant digits — plenty for a color);
* bools go as ``"bool"`` (one byte each), unsigned bytes as ``"uint8"``, integers as ``"int32"``.

``decode`` is the exact inverse (float16 comes back as float16; callers widen if they wish).
What each trait carries, and when an array goes as float16, is :mod:`._payloads`.

    >>> d = encode(np.eye(2, dtype=np.float32))
    >>> d["dtype"], d["shape"], len(d["buffer"])
    ('float32', [2, 2], 16)
    >>> decode(d).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

_WIRE = {"float32": "<f4", "float16": "<f2", "bool": "|u1", "uint8": "|u1", "int32": "<i4"}


def encode(a: Any, *, half: bool = False) -> dict:
    """Encode an array-like (numpy, torch, nested lists) for a synced trait.

    Float arrays become float32 (float16 when ``half``), bool arrays ``"bool"``, uint8 stays,
    other integers become int32. NaN and ±inf survive. Raises ``TypeError`` for other dtypes.
    """
    if hasattr(a, "detach"):  # torch tensor
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.dtype == np.bool_:
        dtype = "bool"
    elif arr.dtype == np.uint8:
        dtype = "uint8"
    elif np.issubdtype(arr.dtype, np.floating):
        dtype = "float16" if half else "float32"
        if half:
            arr = np.clip(arr, -65504, 65504)  # keep finite values finite
    elif np.issubdtype(arr.dtype, np.integer):
        dtype = "int32"
    else:
        raise TypeError(f"cannot encode arrays of dtype {arr.dtype} for the front end")
    wire = arr.astype(np.dtype(_WIRE[dtype]), order="C", copy=False)
    return {
        "dtype": dtype,
        "shape": [int(s) for s in wire.shape],
        "buffer": memoryview(wire.tobytes()),
    }


def encode_maybe(a: Any, **kw) -> dict | None:
    """``encode(a)``, or ``None`` for ``None``."""
    return None if a is None else encode(a, **kw)


def decode(d: dict) -> np.ndarray:
    """Inverse of :func:`encode` (accepts bytes, bytearray or memoryview buffers)."""
    dtype = d["dtype"]
    if dtype not in _WIRE:
        raise TypeError(f"unknown wire dtype {dtype!r}; expected one of {sorted(_WIRE)}")
    shape = tuple(int(s) for s in d["shape"])
    arr = np.frombuffer(bytes(d["buffer"]), dtype=np.dtype(_WIRE[dtype]))
    n = int(np.prod(shape)) if shape else 1
    if arr.size != n:
        raise ValueError(f"{dtype}{list(shape)} needs {n} elements, the buffer holds {arr.size}")
    arr = arr.reshape(shape)
    return arr.astype(bool) if dtype == "bool" else arr.copy()
