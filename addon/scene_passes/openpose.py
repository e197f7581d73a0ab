"""OpenPose skeleton images from an armature's joints, without bpy.

The 18 body keypoints of OpenPose's COCO model (``JOINTS``), the 17 limbs drawn
between them (``LIMBS``) and their colours (``COLOURS``) are the skeleton image format
OpenPose ControlNets were trained on: on black, each limb an ellipse
``STICK_WIDTH`` px thick in 60 % of its colour, then each joint a disc of radius
``JOINT_RADIUS`` px in its full colour. Joints that are not known (no bone for them,
behind the camera, outside the picture) are left out with their limbs.

Which bone gives which joint (``BONE_JOINTS``): the first name found, compared without
case, prefixes such as ``DEF-``/``ORG-``/``mixamorig:`` and the kind of separator, among
Rigify (metarig and generated rig), Mixamo and common game-rig names. Shoulders,
elbows, wrists, hips, knees and ankles are the heads of the upper arm, forearm, hand,
thigh, shin and foot bones; the neck is the neck bone's head; eyes and ears are their
bones' heads. Without a nose bone the nose is the middle of the head bone (an
approximation). A bone's custom property ``openpose`` (on the pose bone or the bone),
e.g. ``"RWrist"`` or ``"Nose:tail"``, overrides the table for that joint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

JOINTS = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
          "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar")
LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
         (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0),
           (85, 255, 0), (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255),
           (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255), (170, 0, 255),
           (255, 0, 255), (255, 0, 170), (255, 0, 85))
STICK_WIDTH = 4.0
JOINT_RADIUS = 4.0
LIMB_SHADE = 0.6
ENDS = ("head", "tail", "middle")


def _sided(joint: str, names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Both sides' candidates of joint ``R…``/``L…``: in ``names``, ``{s}`` is the side's
    letter and ``{side}`` its word ("right")."""
    return {letter.upper() + joint: tuple(n.format(s=letter, side=word) for n in names)
            for letter, word in (("r", "right"), ("l", "left"))}


BONE_JOINTS: dict[str, tuple[str, ...]] = {
    "Nose": ("nose", "nose.tip"),
    "Neck": ("neck", "spine.004", "neck.01", "neck.1"),
    **_sided("Shoulder", ("upper.arm.{s}", "upperarm.{s}", "{side}arm", "arm.{s}",
                          "{side}.upper.arm")),
    **_sided("Elbow", ("forearm.{s}", "lowerarm.{s}", "{side}forearm", "lower.arm.{s}",
                       "{side}.fore.arm")),
    **_sided("Wrist", ("hand.{s}", "{side}hand", "{side}.hand")),
    **_sided("Hip", ("thigh.{s}", "{side}upleg", "upper.leg.{s}", "upperleg.{s}",
                     "{side}.up.leg")),
    **_sided("Knee", ("shin.{s}", "calf.{s}", "{side}leg", "lower.leg.{s}", "lowerleg.{s}",
                      "{side}.leg")),
    **_sided("Ankle", ("foot.{s}", "{side}foot", "{side}.foot")),
    **_sided("Eye", ("eye.{s}", "{side}eye", "{side}.eye")),
    **_sided("Ear", ("ear.{s}", "{side}ear", "{side}.ear")),
}
# Joints a bone's head does not give: (candidates, end).
FALLBACKS = {"Nose": (("head", "spine.006"), "middle")}
_PREFIX = re.compile(r"^(mixamorig\d*:|def[-_.]|org[-_.]|mch[-_.])")


def normal_name(name: str) -> str:
    """A bone name compared without case, rig prefixes or the kind of separator."""
    name = _PREFIX.sub("", name.strip().lower())
    return re.sub(r"[\s_\-]+", ".", name)


def parse_override(value: str) -> tuple[str, str] | None:
    """``"RWrist"`` / ``"RWrist:tail"`` → (joint, end); None if it names no joint."""
    joint, _, end = str(value).partition(":")
    joint, end = joint.strip(), (end.strip().lower() or "head")
    by_lower = {j.lower(): j for j in JOINTS}
    if joint.lower() not in by_lower or end not in ENDS:
        return None
    return by_lower[joint.lower()], end


def choose_bones(names: list[str], overrides: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """joint → (bone name, end) for a rig's bone ``names``; ``overrides``: bone name →
    its ``openpose`` property (those win)."""
    chosen: dict[str, tuple[str, str]] = {}
    for bone, value in overrides.items():
        parsed = parse_override(value)
        if parsed is not None and bone in names:
            chosen.setdefault(parsed[0], (bone, parsed[1]))
    by_normal: dict[str, str] = {}
    for name in names:
        by_normal.setdefault(normal_name(name), name)
    for joint in JOINTS:
        if joint in chosen:
            continue
        for candidate in BONE_JOINTS.get(joint, ()):
            if candidate in by_normal:
                chosen[joint] = (by_normal[candidate], "head")
                break
        else:
            candidates, end = FALLBACKS.get(joint, ((), "head"))
            found = [by_normal[c] for c in candidates if c in by_normal]
            if found:
                chosen[joint] = (found[0], end)
    return chosen


def _fill(canvas: np.ndarray, inside: np.ndarray, x0: int, y0: int, colour) -> None:
    height, width = inside.shape
    canvas[y0:y0 + height, x0:x0 + width][inside] = colour


def _window(centre_x: float, centre_y: float, reach: float, width: int, height: int):
    """(x0, y0, pixel-centre grids) of the pixels within ``reach`` of a point, clipped."""
    x0 = max(0, int(np.floor(centre_x - reach)))
    x1 = min(width, int(np.ceil(centre_x + reach)) + 1)
    y0 = max(0, int(np.floor(centre_y - reach)))
    y1 = min(height, int(np.ceil(centre_y + reach)) + 1)
    ys, xs = np.mgrid[y0:max(y0, y1), x0:max(x0, x1)] + 0.5
    return x0, y0, xs, ys


def _limb(canvas: np.ndarray, a, b, colour) -> None:
    """An ellipse from ``a`` to ``b`` (pixel coordinates), ``STICK_WIDTH`` across."""
    (ax, ay), (bx, by) = a, b
    mx, my = (ax + bx) / 2, (ay + by) / 2
    half = max(np.hypot(bx - ax, by - ay) / 2, 1e-6)
    ux, uy = (bx - ax) / (2 * half), (by - ay) / (2 * half)
    height, width = canvas.shape[:2]
    x0, y0, xs, ys = _window(mx, my, max(half, STICK_WIDTH), width, height)
    along = (xs - mx) * ux + (ys - my) * uy
    across = -(xs - mx) * uy + (ys - my) * ux
    _fill(canvas, (along / half) ** 2 + (across / STICK_WIDTH) ** 2 <= 1.0, x0, y0, colour)


def skeleton_image(people: list[Mapping[str, tuple[float, float]]], width: int,
                   height: int) -> np.ndarray:
    """RGB H×W×3 uint8: each person's limbs, then every joint on top (see the module's
    docstring). A person maps joint name → (x, y) in pixels, x right and y down from the
    top-left corner of the picture (pixel (i, j) covers x ∈ [i, i+1))."""
    canvas = np.zeros((height, width, 3), np.uint8)
    for person in people:
        for index, (a, b) in enumerate(LIMBS):
            if JOINTS[a] in person and JOINTS[b] in person:
                shade = tuple(int(c * LIMB_SHADE) for c in COLOURS[index])
                _limb(canvas, person[JOINTS[a]], person[JOINTS[b]], shade)
    for person in people:
        for index, joint in enumerate(JOINTS):
            if joint in person:
                x, y = person[joint]
                x0, y0, xs, ys = _window(x, y, JOINT_RADIUS, width, height)
                _fill(canvas, np.hypot(xs - x, ys - y) <= JOINT_RADIUS, x0, y0,
                      COLOURS[index])
    return canvas
