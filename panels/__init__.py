"""Sidebar panels; filled in by the add-on work."""

CLASSES: tuple = ()
