"""The modules Blender's Python uses import with numpy alone."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'cv2', 'diffusers', 'transformers', 'PIL', 'scipy',
                                  'imageio_ffmpeg', 'bpy'}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import engine.settings, engine.settings_table, engine.schedules, engine.camera
from engine.settings import load_settings
from engine.camera import matrices_to_schedules
import numpy as np
s = load_settings(sys.argv[1])
out = matrices_to_schedules(np.tile(np.eye(4), (3, 1, 1)), [40, 40, 41])
print(s['animation_mode'], out['fov'])
"""


def test_settings_schedules_and_camera_need_only_numpy():
    result = subprocess.run([sys.executable, "-c", BLOCKER,
                             str(ROOT / "tests" / "data" / "runSettings_3D_local.txt")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3D 0:(40), 1:(40), 2:(41)"
