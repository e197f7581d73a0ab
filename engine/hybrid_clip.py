"""The guide clip of a hybrid 2D/3D run, and what it changes in the run's settings.

A run is hybrid when ``hybrid_motion`` or ``hybrid_composite`` is not None.
Its clip is ``video_init_path``: a video file, extracted like Video Input's
(frames ``extract_from_frame`` … ``extract_to_frame``, every
``extract_nth_frame``-th; earlier extractions of the same file are reused, so
``hybrid_generate_inputframes`` changes nothing here), or a folder of images.
As in the webui, ``max_frames`` becomes the clip's length unless
``hybrid_use_init_image`` (which composites the init image instead), and with
``hybrid_use_first_frame_as_init_image`` (on by default) the clip's first frame
is frame 0's init image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import SettingsError
from .progress import Progress


def is_hybrid(settings: Mapping[str, Any]) -> bool:
    return settings["hybrid_motion"] != "None" or settings["hybrid_composite"] != "None"


def extract_clip(settings: Mapping[str, Any], folder: Path, progress: Progress) -> list[Path]:
    """The clip's frames (extracted into ``folder/inputframes`` from a video file); none
    when nothing reads them (compositing the init image, no hybrid motion)."""
    from .video import extract_video
    if settings["hybrid_motion"] == "None" and settings["hybrid_use_init_image"]:
        return []
    if not settings["video_init_path"]:
        wanted = "hybrid_motion" if settings["hybrid_motion"] != "None" else "hybrid_composite"
        raise SettingsError(f"video_init_path: {wanted} {settings[wanted]!r} needs a video "
                            "(or image folder) to follow", key="video_init_path", value="")
    _, frames, note = extract_video(settings["video_init_path"], folder / "inputframes",
                                    settings["extract_nth_frame"],
                                    overwrite=settings["overwrite_extracted_frames"],
                                    key="video_init_path", method=settings["video_decoder"],
                                    first=settings["extract_from_frame"],
                                    last=settings["extract_to_frame"])
    if note and " reusing " in note:
        progress.info(note)
    elif note:
        progress.warning(note, key="video_init_path")
    return frames


def clip_changes(settings: Mapping[str, Any], frames: list[Path],
                 progress: Progress) -> dict[str, Any]:
    """The settings the clip decides: frame count and frame 0's init image."""
    changes: dict[str, Any] = {}
    if not settings["hybrid_use_init_image"] and settings["max_frames"] != len(frames):
        progress.info(f"max_frames: {len(frames)} (the frames of video_init_path, as "
                      "hybrid video counts them)")
        changes["max_frames"] = len(frames)
    if settings["hybrid_use_first_frame_as_init_image"] and frames:
        changes.update(use_init=True, init_image=str(frames[0]))
    return changes


class ClipColours:
    """``color_coherence`` Video Input in a hybrid run: the colour reference is the clip's
    frame at every keyframe that is a multiple of ``color_coherence_video_every_N_frames``
    (frame 0 included), as the webui refreshes it."""

    def __init__(self, settings: Mapping[str, Any], frames: list[Path]) -> None:
        self.frames, self.every = frames, max(1, settings["color_coherence_video_every_N_frames"])
        self.size = (settings["W"], settings["H"])

    def at(self, keyframe: int) -> Any:
        """The new reference at ``keyframe``, or None when the old one stays."""
        if keyframe % self.every or keyframe >= len(self.frames):
            return None
        from .output import read_image
        return read_image(self.frames[keyframe], self.size, "video_init_path")

    def in_force(self, start: int, cadence: int) -> Any:
        """The reference a run resumed at keyframe ``start`` inherits from its keyframes."""
        return self.at(max(k for k in range(0, start, cadence)
                           if not k % self.every and k < len(self.frames)))


def clip_colours(settings: Mapping[str, Any], frames: list[Path]) -> ClipColours | None:
    """The run's clip colour reference, when hybrid and color_coherence is Video Input."""
    if not frames or settings["color_coherence"] != "Video Input":
        return None
    return ClipColours(settings, frames)
