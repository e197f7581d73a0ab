"""Video in and out: frame extraction for Video Input, and the run's mp4.

Extraction defaults to OpenCV (no external binary; reads what its bundled
FFmpeg build reads); ``method="ffmpeg"`` uses imageio-ffmpeg's ffmpeg binary
instead, and OpenCV falls back to it when it cannot open a file.  Movies are
written with the same ffmpeg as H.264/yuv420p (OpenCV's mp4v when no ffmpeg).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .errors import InputError
from .output import FRAME_DIGITS, NewFile, frame_path, image_files, write_atomic
from .paths import local_path

MARKER = ".extracted.json"
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".gif"}


def ffmpeg_executable() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


# ---------------------------------------------------------------- extraction

def video_source(path: str, key: str) -> Path:
    """The local video file or image folder that ``path`` names (the setting ``key``)."""
    if not path:
        raise InputError(f"{key}: no video given", key=key, value=path)
    source = local_path(path, key)
    if not source.is_dir() and not source.is_file():
        raise InputError(f"{key}: video not found: {source}", key=key, value=path)
    return source


def _signature(video: Path, nth: int, first: int, last: int) -> dict:
    stat = video.stat()
    signature = {"video": str(video.resolve()), "size": stat.st_size,
                 "mtime_ns": stat.st_mtime_ns, "extract_nth_frame": nth}
    if (first, last) != (0, -1):  # folders extracted before the range existed stay valid
        signature.update(extract_from_frame=first, extract_to_frame=last)
    return signature


def _wanted(index: int, nth: int, first: int, last: int) -> bool:
    """Whether source frame ``index`` is extracted: inside ``first`` … ``last`` (−1: the
    end) and a multiple of ``nth`` counted from the video's start, as the webui counts."""
    return index >= first and (last == -1 or index <= last) and index % nth == 0


def _check_range(first: int, last: int) -> None:
    if last != -1 and last <= first:
        raise InputError(f"extract_to_frame: {last} is not after extract_from_frame {first}",
                         key="extract_to_frame", value=last)


def extracted_frames(folder: Path) -> list[Path]:
    return sorted(folder.glob("[0-9]" * FRAME_DIGITS + ".jpg"))


def _extract_opencv(video: Path, folder: Path, nth: int, first: int = 0,
                    last: int = -1) -> tuple[int, int] | None:
    """(frames written, frames decoded), or None when OpenCV cannot read the file."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        return None
    index = written = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if _wanted(index, nth, first, last):
                written += 1
                if not cv2.imwrite(str(folder / f"{written:0{FRAME_DIGITS}d}.jpg"), frame,
                                   [cv2.IMWRITE_JPEG_QUALITY, 95]):
                    raise OSError(f"could not write a frame into {folder}")
            index += 1
    finally:
        capture.release()
    return (written, index) if index else None


def _extract_ffmpeg(video: Path, folder: Path, nth: int, first: int = 0,
                    last: int = -1) -> tuple[int, int | None] | None:
    ffmpeg = ffmpeg_executable()
    if ffmpeg is None:
        return None
    select = f"not(mod(n\\,{nth}))*gte(n\\,{first})"
    if last != -1:
        select += f"*lte(n\\,{last})"
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(video),
               "-vf", f"select={select}", "-fps_mode", "passthrough",
               "-q:v", "2", "-start_number", "1", str(folder / f"%0{FRAME_DIGITS}d.jpg")]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return len(extracted_frames(folder)), _frame_count(video)


def extract_video(path: str, folder: Path, nth: int, *, overwrite: bool, key: str,
                  method: str = "opencv", first: int = 0,
                  last: int = -1) -> tuple[Path, list[Path], str | None]:
    """Every ``nth`` frame of ``path`` as ``folder/00001.jpg…``; returns (folder, frames, note).

    A folder already extracted from the same file with the same ``nth`` is
    reused; ``overwrite`` re-extracts (deleting only the numbered jpgs).  A
    folder of other frames is never deleted without ``overwrite``: the new
    frames then go to a fresh sibling folder.  When ``path`` is a folder of
    images (an image sequence, e.g. frames Blender rendered), every ``nth``
    image is used where it is, losslessly.  ``first`` … ``last`` (−1: to the end)
    limit the source frames (images) taken, counted from 0.
    """
    _check_range(first, last)
    video = video_source(path, key)
    if video.is_dir():
        return _image_sequence(video, nth, key, first, last)
    if video.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"{key}: {video.name} is not a video file (expected one of "
                         f"{', '.join(sorted(VIDEO_SUFFIXES))})", key=key, value=path)
    signature = _signature(video, nth, first, last)
    folder, reused, note = _target(folder, signature, overwrite, key)
    if reused:
        return folder, reused, note
    folder.mkdir(parents=True, exist_ok=True)
    extract = _extract_ffmpeg if method == "ffmpeg" else _extract_opencv
    counts = extract(video, folder, nth, first, last)
    if counts is None and method != "ffmpeg":
        counts = _extract_ffmpeg(video, folder, nth, first, last)
    if counts and not counts[0] and first > 0:
        raise InputError(f"extract_from_frame: {first} is past the end of {video}",
                         key="extract_from_frame", value=first)
    if not counts or not counts[0]:
        raise InputError(f"{key}: {video} could not be decoded as a video", key=key, value=path)
    total = counts[1]
    if total is not None and total < nth:
        raise InputError(f"extract_nth_frame: {nth} is more than the {total} frames of {video}",
                         key="extract_nth_frame", value=nth)
    frames = extracted_frames(folder)
    write_atomic(folder / MARKER, json.dumps({**signature, "count": len(frames)}).encode("utf-8"),
                 replace=True)
    return folder, frames, note


def _target(folder: Path, signature: dict, overwrite: bool,
            key: str) -> tuple[Path, list[Path], str | None]:
    """(folder to extract into, frames to reuse as they are, note).  Frames extracted
    earlier with the same signature are reused; other frames are deleted only with
    ``overwrite``, else the new ones go to a fresh sibling folder."""
    marker = folder / MARKER
    existing = extracted_frames(folder) if folder.is_dir() else []
    if existing and not overwrite:
        try:
            recorded = json.loads(marker.read_text())
        except (OSError, ValueError):
            recorded = None
        if recorded and {k: recorded.get(k) for k in signature} == signature and \
                recorded.get("count") == len(existing):
            return folder, existing, f"{key}: reusing {len(existing)} frames in {folder}"
        stem, number = folder.name, 2
        while (folder.parent / f"{stem}_{number}").exists():
            number += 1
        fresh = folder.parent / f"{stem}_{number}"
        return fresh, [], (f"{key}: {folder} holds frames of another video or "
                           f"extract_nth_frame; extracting into {fresh} (set "
                           "overwrite_extracted_frames to replace them)")
    if existing:
        for frame in existing:
            frame.unlink()
        marker.unlink(missing_ok=True)
    return folder, [], None


def _image_sequence(source: Path, nth: int, key: str, first: int = 0,
                    last: int = -1) -> tuple[Path, list[Path], None]:
    files = image_files(source)
    if not files:
        raise InputError(f"{key}: the folder {source} holds no images", key=key,
                         value=str(source))
    if len(files) < nth:
        raise InputError(f"extract_nth_frame: {nth} is more than the {len(files)} images in "
                         f"{source}", key="extract_nth_frame", value=nth)
    chosen = [f for i, f in enumerate(files) if _wanted(i, nth, first, last)]
    if not chosen:
        raise InputError(f"extract_from_frame: {first} is past the {len(files)} images in "
                         f"{source}", key="extract_from_frame", value=first)
    return source, chosen, None


def _frame_count(video: Path) -> int | None:
    import cv2

    capture = cv2.VideoCapture(str(video))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    return count if count > 0 else None


def video_fps(path: str) -> float | None:
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    return fps if fps and fps > 0 else None


# ---------------------------------------------------------------- movie output

def movie_path(folder: Path, timestring: str) -> Path:
    """``{timestring}.mp4``, else the first free ``{timestring}_2.mp4``, ``_3``…

    A resumed run that makes its movie again never replaces the earlier one.
    """
    target, number = folder / f"{timestring}.mp4", 2
    while os.path.lexists(target):  # a link to nothing is in the way too
        target, number = folder / f"{timestring}_{number}.mp4", number + 1
    return target


def write_video(folder: Path, timestring: str, count: int, fps: float,
                audio: str | None = None) -> Path:
    """Encode ``{timestring}_00000.png…`` into a new movie (``movie_path``); returns its path.

    The movie is encoded under a temporary name and appears whole.  ``audio``
    (a video or audio file) adds its first audio track, cut to the movie's length.
    """
    frames = folder / f"{timestring}_%0{FRAME_DIGITS}d.png"
    ffmpeg = ffmpeg_executable()
    # Encoders pick the format by suffix; published under the name free at the end.
    with NewFile(lambda: movie_path(folder, timestring), suffix=".mp4") as movie:
        if ffmpeg is not None:
            _encode_ffmpeg(ffmpeg, frames, count, fps, audio, movie.temp)
        else:
            _encode_opencv(folder, timestring, count, fps, movie.temp)
    return movie.path


def movie_command(ffmpeg: str, frames: list[str], fps: float, audio: str | None,
                  movie: Path, count: int | None = None) -> list[str]:
    """ffmpeg's command line encoding PNG frames into ``movie``: H.264/yuv420p, the
    soundtrack ``audio`` cut to the movie's length.  ``frames``: the frames' input, its
    options then ``-i`` and the source (a file pattern, or ``-`` for a pipe); ``count``:
    the frames taken at most (None: all)."""
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-n",
               "-framerate", f"{fps:g}", *frames]
    if audio:
        command += ["-i", audio, "-map", "0:v:0", "-map", "1:a:0?", "-c:a", "aac", "-shortest"]
    if count is not None:
        command += ["-frames:v", str(count)]
    return command + ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "17",
                      "-preset", "veryfast",
                      # yuv420p needs even sizes; pad by one pixel when a side is odd.
                      "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", str(movie)]


def _encode_ffmpeg(ffmpeg: str, frames: Path, count: int, fps: float, audio: str | None,
                   movie: Path) -> None:
    """H.264/yuv420p with ffmpeg, from the frames' files."""
    command = movie_command(ffmpeg, ["-start_number", "0", "-i", str(frames)], fps, audio,
                            movie, count)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed writing {movie}: {result.stderr.strip()}")


def _encode_opencv(folder: Path, timestring: str, count: int, fps: float, movie: Path) -> None:
    """Fallback without ffmpeg: MPEG-4 Part 2, which OpenCV can always write."""
    import cv2

    first = cv2.imread(str(frame_path(folder, timestring, 0)))
    writer = cv2.VideoWriter(str(movie), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                             (first.shape[1], first.shape[0]))
    try:
        for index in range(count):
            writer.write(cv2.imread(str(frame_path(folder, timestring, index))))
    finally:
        writer.release()
