"""Where a run writes: folder, timestring and frame files, never overwriting."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from .errors import InputError
from .paths import check_folder_name

FRAME_DIGITS = 5


def batch_folder(outdir: str | Path, batch_name: str, timestring: str) -> Path:
    """``outdir/batch_name`` with ``{timestring}`` substituted; no path tricks, and no name
    the file system would refuse (checked before anything is written)."""
    name = batch_name.replace("{timestring}", timestring).strip() or "Deforum"
    check_folder_name(name, Path(outdir), "batch_name", batch_name)
    return Path(outdir) / name


def new_timestring(taken: callable) -> str:
    """Now as YYYYmmddHHMMSS, moved forward a second at a time while ``taken``."""
    now = time.time()
    while True:
        stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(now))
        if not taken(stamp):
            return stamp
        now += 1


def timestring_in_use(folder: Path, stamp: str) -> bool:
    return folder.is_dir() and any(folder.glob(f"{stamp}_*"))


def frame_path(folder: Path, timestring: str, index: int) -> Path:
    return folder / f"{timestring}_{index:0{FRAME_DIGITS}d}.png"


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an RGB (or grey H×W) uint8 image to a new PNG; never replaces a file."""
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(
        image if image.ndim == 2 else image[..., ::-1]))
    if not ok:
        raise OSError(f"could not encode {path}")
    with open(path, "xb") as handle:
        handle.write(data.tobytes())


def read_image(path: str | Path, size: tuple[int, int], key: str) -> np.ndarray:
    """Read an image file as RGB uint8 resized to (W, H); errors name the setting."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{key}: file not found: {path}", key=key, value=str(path))
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{key}: {path} is not a readable image", key=key, value=str(path))
    image = image[..., ::-1]
    if image.shape[1] != size[0] or image.shape[0] != size[1]:
        image = cv2.resize(image, size, interpolation=cv2.INTER_LANCZOS4)
    return np.ascontiguousarray(image)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def image_files(folder: Path) -> list[Path]:
    """The images in ``folder`` in natural order (frame2 before frame10)."""
    def natural(path: Path) -> list:
        return [int(part) if part.isdigit() else part.lower()
                for part in re.split(r"(\d+)", path.name)]
    return sorted((p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=natural)
