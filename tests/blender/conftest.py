"""The ``addon`` fixture of the tests that run the add-on in the real bpy.

``tests.blender.helpers`` is imported first: it makes Blender's user folders
temporary before bpy loads.
"""

import pytest

from tests.blender.helpers import Addon


@pytest.fixture
def addon():
    """The add-on enabled on factory settings for one test."""
    a = Addon()
    try:
        yield a
    finally:
        a.close()
