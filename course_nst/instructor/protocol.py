"""The wire format between the grader and the sandboxed kernel (no pickle from the kernel's side).

A frame is a JSON header and a list of raw byte blobs (tensor data)::

    [8-byte big-endian header length][header JSON][blob 0][blob 1]...

The header's ``"blobs"`` lists the blob lengths. The grader *sends* the arguments of a call
pickled (it trusts itself; the kernel unpickles), but it *reads* only JSON and raw tensor bytes,
checked against a whitelist of dtypes, shapes and sizes (:func:`decode`), so nothing the kernel
sends can run code in the grader.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any, BinaryIO

import numpy as np
import torch

__all__ = [
    "DTYPES",
    "MAX_BLOB_BYTES",
    "MAX_HEADER_BYTES",
    "ProtocolError",
    "decode",
    "decode_number",
    "encode",
    "encode_number",
    "read_frame",
    "read_frame_fd",
    "write_frame",
]

MAX_HEADER_BYTES = 16 * 2**20
MAX_BLOB_BYTES = 512 * 2**20
MAX_DEPTH = 16
MAX_ITEMS = 100_000

#: The tensor dtypes that may cross, by name.
DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "uint8": torch.uint8,
    "bool": torch.bool,
    "complex64": torch.complex64,
    "complex128": torch.complex128,
}


class ProtocolError(Exception):
    """The other side sent something that is not a valid frame or value."""


def write_frame(stream: BinaryIO, header: dict, blobs: list[bytes] | None = None) -> None:
    blobs = blobs or []
    data = json.dumps({**header, "blobs": [len(b) for b in blobs]}).encode()
    stream.write(struct.pack(">Q", len(data)) + data)
    for blob in blobs:
        stream.write(blob)
    stream.flush()


def read_frame(stream: BinaryIO) -> tuple[dict, list[bytes]]:
    """Read one frame from a trusted stream (the kernel reading the grader's requests)."""

    def exact(n: int) -> bytes:
        data = stream.read(n)
        if data is None or len(data) != n:
            raise EOFError("the grader closed the connection")
        return data

    (n,) = struct.unpack(">Q", exact(8))
    header = json.loads(exact(n))
    return header, [exact(int(k)) for k in header.get("blobs", [])]


def read_frame_fd(fd: int, deadline: float) -> tuple[dict, list[bytes]]:
    """Read one frame from an untrusted file descriptor before ``deadline`` (``time.monotonic``).

    Raises:
        TimeoutError: the deadline passed.
        EOFError: the other side closed the pipe (its process ended).
        ProtocolError: a malformed or oversized frame.
    """

    def exact(n: int) -> bytes:
        parts: list[bytes] = []
        left = n
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                raise TimeoutError
            chunk = os.read(fd, min(left, 2**20))
            if not chunk:
                raise EOFError
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    (n,) = struct.unpack(">Q", exact(8))
    if n > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {n} bytes")
    try:
        header = json.loads(exact(n))
    except ValueError as e:
        raise ProtocolError(f"header is not JSON: {e}") from None
    sizes = header.get("blobs") if isinstance(header, dict) else None
    if not isinstance(sizes, list) or not all(isinstance(k, int) and k >= 0 for k in sizes):
        raise ProtocolError("bad blob list")
    if sum(sizes) > MAX_BLOB_BYTES:
        raise ProtocolError("too much tensor data")
    return header, [exact(k) for k in sizes]


# ---------------------------------------------------------------- values


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def encode(value: Any, blobs: list[bytes], handle_of: Any = None, depth: int = 0) -> Any:
    """A JSON-able description of ``value``; tensor data goes to ``blobs``.

    ``handle_of(tensor)`` may return an id under which the sender keeps a tensor that requires
    grad (for a later backward request).
    """
    if depth > MAX_DEPTH:
        return {"object": "deeply nested value"}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else float(value)
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, torch.Tensor):
        name = str(value.dtype).removeprefix("torch.")
        if name not in DTYPES or value.layout != torch.strided or value.is_quantized:
            return {"object": f"Tensor({name})"}
        blobs.append(_tensor_bytes(value))
        return {
            "tensor": len(blobs) - 1,
            "dtype": name,
            "shape": list(value.shape),
            "requires_grad": bool(value.requires_grad),
            "handle": handle_of(value) if handle_of is not None and value.requires_grad else None,
        }
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        name = str(array.dtype)
        if name not in DTYPES or name == "bfloat16":
            return {"object": type(value).__name__}
        blobs.append(np.ascontiguousarray(array).tobytes())
        return {
            "ndarray": len(blobs) - 1,
            "dtype": name,
            "shape": list(array.shape),
            "scalar": isinstance(value, np.generic),
        }
    if isinstance(value, (list, tuple)):
        key = "list" if isinstance(value, list) else "tuple"
        return {key: [encode(v, blobs, handle_of, depth + 1) for v in list(value)[:MAX_ITEMS]]}
    if isinstance(value, dict):
        return {
            "dict": [
                [encode(k, blobs, None, depth + 1), encode(v, blobs, handle_of, depth + 1)]
                for k, v in list(value.items())[:MAX_ITEMS]
            ]
        }
    return {"object": type(value).__name__}


class Opaque:
    """Stands for a value of a type that cannot cross (the checker only sees its type's name)."""


def _opaque(name: str) -> Any:
    safe = "".join(ch for ch in name if ch.isalnum() or ch in "_()") or "object"
    return type(safe[:60], (Opaque,), {})()


def _tensor(desc: dict, blobs: list[bytes]) -> torch.Tensor:
    dtype = DTYPES.get(desc.get("dtype"))  # type: ignore[arg-type]
    shape = desc.get("shape")
    index = desc.get("tensor")
    if dtype is None or not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ProtocolError("bad tensor description")
    if not isinstance(index, int) or not 0 <= index < len(blobs):
        raise ProtocolError("bad tensor blob index")
    numel = 1
    for s in shape:
        numel *= s
    itemsize = torch.empty((), dtype=dtype).element_size()
    blob = blobs[index]
    if numel * itemsize != len(blob):
        raise ProtocolError("tensor data does not match its shape")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    view_dtype = torch.int16 if dtype == torch.bfloat16 else dtype
    t = torch.frombuffer(bytearray(blob), dtype=view_dtype).reshape(shape)
    return t.view(torch.bfloat16) if dtype == torch.bfloat16 else t


def decode(desc: Any, blobs: list[bytes], on_tensor: Any = None, depth: int = 0) -> Any:
    """The value described by :func:`encode`'s output, rebuilt from JSON and raw bytes only.

    ``on_tensor(tensor, desc)`` may replace each rebuilt tensor (to attach gradients).
    """
    if depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    if desc is None or isinstance(desc, (bool, str)):
        return desc
    if isinstance(desc, int):
        return desc
    if isinstance(desc, dict) and len(desc) >= 1:
        if "float" in desc:
            try:
                return float(desc["float"])
            except (TypeError, ValueError):
                raise ProtocolError("bad float") from None
        if "tensor" in desc:
            t = _tensor(desc, blobs)
            return on_tensor(t, desc) if on_tensor is not None else t
        if "ndarray" in desc:
            t = _tensor({**desc, "tensor": desc["ndarray"]}, blobs)
            array = t.numpy()
            return array[()] if desc.get("scalar") else array
        if "list" in desc and isinstance(desc["list"], list):
            return [decode(v, blobs, on_tensor, depth + 1) for v in desc["list"]]
        if "tuple" in desc and isinstance(desc["tuple"], list):
            return tuple(decode(v, blobs, on_tensor, depth + 1) for v in desc["tuple"])
        if "dict" in desc and isinstance(desc["dict"], list):
            out = {}
            for pair in desc["dict"]:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ProtocolError("bad dict item")
                key = decode(pair[0], blobs, None, depth + 1)
                try:
                    out[key] = decode(pair[1], blobs, on_tensor, depth + 1)
                except TypeError:
                    raise ProtocolError("unhashable dict key") from None
            return out
        if "object" in desc and isinstance(desc["object"], str):
            return _opaque(desc["object"])
    raise ProtocolError(f"bad value description {str(desc)[:80]}")


# ---------------------------------------------------------------- a prediction's number

MAX_INT_DIGITS = 1000


def encode_number(value: Any) -> Any:
    """A prediction's value for the wire: a plain ``int`` or ``float`` as such, ``None`` as
    ``null``, anything else (a ``bool``, a string, a NumPy scalar, a ``float`` subclass) only by
    its type's name, so no method of the student's object is called."""
    kind = type(value)
    if value is None:
        return None
    if kind is int:
        if value.bit_length() > MAX_INT_DIGITS * 3:  # beyond any float: say so as one
            return {"float": "inf" if value > 0 else "-inf"}
        return {"int": int.__repr__(value)}
    if kind is float:
        return {"float": float.__repr__(value)}
    try:
        name = type.__dict__["__name__"].__get__(kind)  # not a metaclass's own __name__
    except Exception:
        name = "object"
    return {"object": str(name)[:60]}


def decode_number(desc: Any) -> Any:
    """The value :func:`encode_number` described: ``None``, an ``int``, a ``float``, or a stand-in
    that carries only the type's name; built here from JSON strings, so it is always a real
    number or ``None`` or that stand-in.

    Raises:
        ProtocolError: anything else.
    """
    if desc is None:
        return None
    if isinstance(desc, dict) and len(desc) == 1:
        [(key, text)] = desc.items()
        if key == "int" and isinstance(text, str) and len(text) <= MAX_INT_DIGITS + 1:
            if text.lstrip("-").isdigit() and text.isascii():
                return int(text)
        elif key == "float" and isinstance(text, str) and len(text) <= 40:
            try:
                return float(text)
            except ValueError:
                pass
        elif key == "object" and isinstance(text, str):
            return _opaque(text)
    raise ProtocolError(f"bad number description {str(desc)[:80]}")
