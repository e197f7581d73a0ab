"""One module per ``animation_mode``; ``MODES`` maps the setting's value to its class.

Each class follows ``common.Mode``: ``cli.run`` does the preparation every run
shares (settings, model, seed, output folder, settings file, movie) and calls
the mode for the rest.
"""

from __future__ import annotations

from .animation import Animation
from .common import Mode
from .interpolation import Interpolation
from .stills import Stills
from .video_input import VideoInput

MODES: dict[str, type[Mode]] = {
    "None": Stills,
    "2D": Animation,
    "3D": Animation,
    "Video Input": VideoInput,
    "Interpolation": Interpolation,
}
