"""8-bit PNG files from NumPy arrays without bpy or OpenCV (Blender's Python has neither
OpenCV nor Pillow), written atomically: a control image is exactly the bytes computed,
with no colour management in between."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ...engine.output import write_atomic

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 3: 2}  # channels → PNG colour type (grey, RGB)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png(image: np.ndarray) -> bytes:
    """A grey H×W or RGB H×W×3 uint8 image (row 0 at the top) as PNG bytes."""
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8:
        raise ValueError(f"a PNG is written from uint8 pixels, not {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    height, width, channels = pixels.shape
    if channels not in _COLOUR_TYPES:
        raise ValueError(f"a PNG is written from 1 or 3 channels, not {channels}")
    rows = np.concatenate([np.zeros((height, 1), np.uint8),  # filter type 0 per row
                           pixels.reshape(height, width * channels)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _chunk(b"IEND", b""))


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """``image`` as ``path``, atomically (a rerun of the pass replaces its own file)."""
    return write_atomic(Path(path), encode_png(image), replace=True)
