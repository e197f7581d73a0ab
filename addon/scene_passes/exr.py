"""Named channels of an uncompressed scanline OpenEXR file, without bpy or OpenCV.

Blender writes every render pass (here the Vector pass) only into a multilayer
EXR, whose channels are named ``<layer>.<pass>.<channel>``; ``bpy.data.images``
shows one pass of such a file and OpenCV reads colour channels only. With
``exr_codec = 'NONE'`` the file is a header, an offset table and one block per
scanline holding each channel's row in channel-name order, which NumPy reads
directly.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

_MAGIC = 20000630
_TYPES = {1: np.dtype("<f2"), 2: np.dtype("<f4"), 0: np.dtype("<u4")}


def _string(data: bytes, at: int) -> tuple[str, int]:
    end = data.find(b"\0", at)
    if end < 0:
        raise ValueError("truncated EXR: the file ends inside a header")
    return data[at:end].decode("latin-1"), end + 1


def _attributes(data: bytes, at: int) -> tuple[dict[str, bytes], int]:
    """One header: attribute name → raw value, and where the next header starts."""
    attributes = {}
    while data[at] != 0:
        name, at = _string(data, at)
        _, at = _string(data, at)
        (size,) = struct.unpack_from("<i", data, at)
        attributes[name] = data[at + 4:at + 4 + size]
        at += 4 + size
    return attributes, at + 1


def _headers(data: bytes) -> tuple[list[dict[str, bytes]], bool, int]:
    """Each part's header, whether the file is multi-part, and where the offsets start."""
    magic, version = struct.unpack_from("<ii", data, 0)
    if magic != _MAGIC:
        raise ValueError("not an OpenEXR file")
    if version & 0xA00:  # tiled or deep
        raise ValueError("only scanline EXR files are read")
    multipart = bool(version & 0x1000)
    headers, at = [], 8
    while True:
        attributes, at = _attributes(data, at)
        headers.append(attributes)
        if not multipart or data[at] == 0:
            return headers, multipart, at + (1 if multipart else 0)


def _channels(raw: bytes) -> list[tuple[str, np.dtype]]:
    channels, at = [], 0
    while raw[at] != 0:
        name, at = _string(raw, at)
        pixel_type, _, x_sampling, y_sampling = struct.unpack_from("<iB3xii", raw, at)
        if (x_sampling, y_sampling) != (1, 1):
            raise ValueError(f"channel {name!r} is subsampled")
        if pixel_type not in _TYPES:
            raise ValueError(f"channel {name!r} has an unknown pixel type {pixel_type}")
        channels.append((name, _TYPES[pixel_type]))
        at += 16
    return channels


def read_channels(path: str | Path) -> dict[str, np.ndarray]:
    """Every channel of ``path`` (all parts) as an H×W array, row 0 at the picture's top;
    a file this reader cannot read, truncated or corrupt, is a ValueError naming it."""
    data = Path(path).read_bytes()
    try:
        return _read(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except (struct.error, IndexError, KeyError) as exc:
        raise ValueError(f"{path}: truncated or corrupt EXR ({type(exc).__name__}: "
                         f"{exc})") from None


def plane_reader(path: str | Path, width: int, height: int,
                 what: str) -> Callable[[str], np.ndarray]:
    """A reader of the float32 plane whose channel name ends with a suffix (e.g.
    ``".Combined.R"``) in the EXR at ``path``, checked to be ``width``×``height``;
    ``what`` names the render in errors."""
    channels = read_channels(path)

    def channel(suffix: str) -> np.ndarray:
        found = [name for name in channels if name.endswith(suffix)]
        if not found:
            raise RuntimeError(f"the {what} render has no {suffix[1:]} channel")
        plane = channels[found[0]].astype(np.float32)
        if plane.shape != (height, width):
            raise RuntimeError(f"the {what} render is {plane.shape[::-1]}, expected "
                               f"{(width, height)}")
        return plane
    return channel


def _read(data: bytes) -> dict[str, np.ndarray]:
    headers, multipart, at = _headers(data)
    out: dict[str, np.ndarray] = {}
    for header in headers:
        if header.get("compression", b"\0")[0] != 0:
            raise ValueError("only uncompressed EXR files are read (exr_codec 'NONE')")
        channels = _channels(header["channels"])
        x0, y0, x1, y1 = struct.unpack("<iiii", header["dataWindow"])
        width, height = x1 - x0 + 1, y1 - y0 + 1
        row = np.dtype([(name, dtype, (width,)) for name, dtype in channels])
        planes = {name: np.empty((height, width), dtype) for name, dtype in channels}
        skip = 4 if multipart else 0  # a multi-part chunk starts with its part number
        if at + 8 * height > len(data):
            raise ValueError("truncated EXR: the file ends inside its offset table")
        for offset in np.frombuffer(data, "<u8", height, at).astype(int):
            if offset + skip + 8 + row.itemsize > len(data):
                raise ValueError("truncated EXR: the file ends before its last scanline")
            y = struct.unpack_from("<i", data, offset + skip)[0] - y0
            if not 0 <= y < height:
                raise ValueError(f"truncated or corrupt EXR (scanline {y + y0} outside "
                                 f"rows {y0}…{y1})")
            line = np.frombuffer(data, row, 1, offset + skip + 8)[0]
            for name, _ in channels:
                planes[name][y] = line[name]
        out.update(planes)
        at += 8 * height
    return out
