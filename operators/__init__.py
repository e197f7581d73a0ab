"""Operators (thin adapters over ``engine``); filled in by the add-on work."""

CLASSES: tuple = ()
