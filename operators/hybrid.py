"""The scene as the hybrid video, in one click: its own renders are the video and its
exact motion replaces estimated flow."""

from __future__ import annotations

import bpy


class DEFORUM_OT_scene_as_hybrid_video(bpy.types.Operator):
    """Hybrid motion follows this scene: its renders are the hybrid video (Scene as Hybrid
    Video), Hybrid Motion is Optical Flow and Flow Source is the Blender scene (the flow
    method, used only with Hybrid from Last Image, becomes DIS Medium if it was RAFT
    without RAFT weights)"""

    bl_idname = "deforum.scene_as_hybrid_video"
    bl_label = "Use the Scene as Hybrid Video"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.scene.deforum
        if settings.animation_mode not in ("2D", "3D"):
            settings.animation_mode = "2D"
            self.report({"INFO"}, "Hybrid motion acts in 2D and 3D: Animation Mode is now 2D")
        settings.hybrid_from_scene = True
        settings.hybrid_motion = "Optical Flow"
        settings.flow_source = "scene"
        if settings.hybrid_flow_method == "RAFT" and not settings.raft_model_path:
            settings.hybrid_flow_method = "DIS Medium"  # RAFT without weights is refused
        return {"FINISHED"}


CLASSES = (DEFORUM_OT_scene_as_hybrid_video,)
