"""The add-on's EXR reader, without Blender: uncompressed scanline files built here byte by
byte after the OpenEXR layout (magic and version, headers of attributes, an offset table,
one chunk per scanline), single- and multi-part, read back channel by channel; broken
files are refused with a message that names the file."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from tests.addon.pure import addon_module

read_channels = addon_module("addon.scene_passes.exr").read_channels

MAGIC = 20000630
PIXEL_TYPES = {np.dtype("<u4"): 0, np.dtype("<f2"): 1, np.dtype("<f4"): 2}
WINDOW = (0, 5, 3, 7)  # x0, y0, x1, y1: 4 wide, 3 rows starting at row 5


def _attribute(name: str, kind: str, value: bytes) -> bytes:
    return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(value)) + value


def _header(planes: dict[str, np.ndarray], part: str | None, compression: int) -> bytes:
    channels = b"".join(name.encode() + b"\0" + struct.pack("<iB3xii",
                                                            PIXEL_TYPES[planes[name].dtype],
                                                            0, 1, 1)
                        for name in sorted(planes)) + b"\0"
    box = struct.pack("<iiii", *WINDOW)
    attributes = [_attribute("channels", "chlist", channels),
                  _attribute("compression", "compression", bytes([compression])),
                  _attribute("dataWindow", "box2i", box),
                  _attribute("displayWindow", "box2i", box),
                  _attribute("lineOrder", "lineOrder", b"\0"),
                  _attribute("pixelAspectRatio", "float", struct.pack("<f", 1.0)),
                  _attribute("screenWindowCenter", "v2f", struct.pack("<ff", 0.0, 0.0)),
                  _attribute("screenWindowWidth", "float", struct.pack("<f", 1.0))]
    if part is not None:
        rows = WINDOW[3] - WINDOW[1] + 1
        attributes += [_attribute("name", "string", part.encode()),
                       _attribute("type", "string", b"scanlineimage"),
                       _attribute("chunkCount", "int", struct.pack("<i", rows))]
    return b"".join(attributes) + b"\0"


def exr_bytes(parts: list[dict[str, np.ndarray]], compression: int = 0) -> bytes:
    """An uncompressed scanline EXR of ``parts`` (channel name → H×W array), one part a
    plain file, more a multi-part one; scanlines stored bottom row first, as a writer
    may: the reader must place rows by their y, not by their order in the file."""
    multipart = len(parts) > 1
    start = struct.pack("<ii", MAGIC, 2 | (0x1000 if multipart else 0))
    headers = b"".join(_header(planes, f"part{p}" if multipart else None, compression)
                       for p, planes in enumerate(parts)) + (b"\0" if multipart else b"")
    rows = WINDOW[3] - WINDOW[1] + 1
    at = len(start) + len(headers) + 8 * rows * len(parts)
    offsets, chunks = [], []
    for p, planes in enumerate(parts):
        table = {}
        for y in reversed(range(rows)):
            data = b"".join(planes[name][y].tobytes() for name in sorted(planes))
            chunk = (struct.pack("<i", p) if multipart else b"") + \
                struct.pack("<ii", WINDOW[1] + y, len(data)) + data
            table[y] = at
            at += len(chunk)
            chunks.append(chunk)
        offsets += [table[y] for y in range(rows)]
    return start + headers + struct.pack(f"<{len(offsets)}Q", *offsets) + b"".join(chunks)


def planes(seed: int, names: dict[str, str]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (WINDOW[3] - WINDOW[1] + 1, WINDOW[2] - WINDOW[0] + 1)
    return {name: (rng.uniform(-100, 100, shape) if kind != "<u4"
                   else rng.integers(0, 2 ** 31, shape)).astype(kind)
            for name, kind in names.items()}


def test_a_single_part_file_reads_back_every_channel_in_its_own_type(tmp_path):
    written = planes(0, {"R": "<f4", "G": "<f2", "Z": "<f4", "id": "<u4"})
    path = tmp_path / "single.exr"
    path.write_bytes(exr_bytes([written]))
    read = read_channels(path)
    assert sorted(read) == sorted(written)
    for name, plane in written.items():
        assert read[name].dtype == plane.dtype and np.array_equal(read[name], plane), name


def test_a_multi_part_file_reads_back_the_channels_of_every_part(tmp_path):
    """Blender's multilayer layout: the combined pass and the Vector pass."""
    combined = planes(1, {"ViewLayer.Combined.R": "<f4", "ViewLayer.Combined.A": "<f4"})
    vector = planes(2, {f"ViewLayer.Vector.{c}": "<f4" for c in "XYZW"})
    path = tmp_path / "layers.exr"
    path.write_bytes(exr_bytes([combined, vector]))
    read = read_channels(path)
    assert sorted(read) == sorted([*combined, *vector])
    for name, plane in {**combined, **vector}.items():
        assert np.array_equal(read[name], plane), name


@pytest.mark.parametrize("cut", [20, 300, 9])
def test_a_truncated_file_is_refused_naming_it(tmp_path, cut):
    """Cut inside the header, inside the offset table or inside the last scanline."""
    data = exr_bytes([planes(3, {"R": "<f4", "A": "<f4"})])
    path = tmp_path / "cut.exr"
    path.write_bytes(data[:cut] if cut > 9 else data[:-cut])
    with pytest.raises(ValueError) as error:
        read_channels(path)
    assert str(error.value).startswith(f"{path}: ")
    assert "truncated" in str(error.value)[len(str(path)):]


@pytest.mark.parametrize("damage, message", [
    ("magic", "not an OpenEXR file"),
    ("compressed", "only uncompressed EXR files"),
    ("scanline", "truncated or corrupt"),
])
def test_a_corrupt_file_is_refused_with_what_is_wrong(tmp_path, damage, message):
    written = [planes(4, {"R": "<f4"})]
    data = bytearray(exr_bytes(written, compression=3 if damage == "compressed" else 0))
    if damage == "magic":
        data[0] ^= 0xFF
    elif damage == "scanline":  # row 0's chunk (first in the table) names row 999
        offset = struct.unpack_from("<Q", data, len(data) - 3 * (4 * 4 + 8) - 3 * 8)[0]
        struct.pack_into("<i", data, offset, 999)
    path = tmp_path / "bad.exr"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError) as error:
        read_channels(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)[len(str(path)):]
