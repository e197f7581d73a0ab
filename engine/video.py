"""Movie output: the written frames as an H.264 mp4 (imageio-ffmpeg's ffmpeg)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .output import FRAME_DIGITS


def ffmpeg_executable() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


def write_video(folder: Path, timestring: str, count: int, fps: float) -> Path:
    """Encode ``{timestring}_00000.png…`` into ``{timestring}.mp4`` (never replaces one)."""
    target = folder / f"{timestring}.mp4"
    if target.exists():
        raise FileExistsError(f"{target} exists; not overwriting it")
    ffmpeg = ffmpeg_executable()
    if ffmpeg is not None:
        command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-n",
                   "-framerate", f"{fps:g}", "-start_number", "0",
                   "-i", str(folder / f"{timestring}_%0{FRAME_DIGITS}d.png"),
                   "-frames:v", str(count), "-c:v", "libx264", "-pix_fmt", "yuv420p",
                   "-crf", "17", "-preset", "veryfast",
                   # yuv420p needs even sizes; pad by one pixel when a side is odd.
                   "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", str(target)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg failed writing {target}: {result.stderr.strip()}")
        return target
    import cv2  # fallback without ffmpeg: MPEG-4 Part 2, which OpenCV can always write

    first = cv2.imread(str(folder / f"{timestring}_{0:0{FRAME_DIGITS}d}.png"))
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                             (first.shape[1], first.shape[0]))
    try:
        for index in range(count):
            writer.write(cv2.imread(str(folder / f"{timestring}_{index:0{FRAME_DIGITS}d}.png")))
    finally:
        writer.release()
    return target
