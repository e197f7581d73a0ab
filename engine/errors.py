"""Errors the engine reports to users, each mapped to a process exit code."""

from __future__ import annotations

# The engine's exit codes: every process that reads them (the add-on, farms, scripts)
# imports them from here.
EXIT_DONE = 0
EXIT_FAILED = 1  # an unexpected error: the traceback is in the log
EXIT_SETTINGS = 2
EXIT_MODEL = 3
EXIT_CANCELLED = 130


def shown(value: object, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages quote values from strangers,
    which can be megabytes long."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "…"


class SettingsError(ValueError):
    """A setting is missing, malformed or out of range (exit code 2)."""

    exit_code = EXIT_SETTINGS

    def __init__(self, message: str, key: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.key = key
        self.value = value


class InputError(SettingsError):
    """An input file named by a setting is missing or unreadable (exit code 2)."""


class OutputError(SettingsError):
    """A file could not be written in the output folder: no permission, no space left, a
    name the file system refuses, something in the way (exit code 2, key ``outdir``)."""


class OutOfMemory(SettingsError):
    """The device ran out of memory rendering a frame (exit code 2): the cure is a setting
    (a smaller W/H, VAE tiling), so it reports like one and names it in ``key``."""


class ModelError(RuntimeError):
    """A model could not be loaded (exit code 3); ``key`` names the setting that chose it."""

    exit_code = EXIT_MODEL

    def __init__(self, message: str, key: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.key = key
        self.value = value


class Cancelled(Exception):
    """The user asked the run to stop (exit code 130)."""

    exit_code = EXIT_CANCELLED


class BlankFrame(RuntimeError):
    """A generated frame came out blank and ``reroll_blank_frames`` stops the run (exit 1)."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, key: str = "reroll_blank_frames") -> None:
        super().__init__(message)
        self.key = key
