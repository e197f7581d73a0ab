"""A run with the webui's noise, anti-blur, colour and blank-frame settings takes them all."""

import json

from tests.engine.test_cli import frames_of, run_engine, start_event

KEYS = {
    "noise_type": "perlin", "perlin_w": 4, "perlin_h": 6, "perlin_octaves": 3,
    "perlin_persistence": 0.6, "enable_noise_multiplier_scheduling": True,
    "noise_multiplier_schedule": "0: (1.05)", "amount_schedule": "0: (0.3)",
    "kernel_schedule": "0: (5)", "sigma_schedule": "0: (1.0)", "threshold_schedule": "0: (1)",
    "color_coherence": "RGB", "color_coherence_video_every_N_frames": 3,
    "color_force_grayscale": False, "legacy_colormatch": False,
    "color_coherence_image_path": "", "reroll_blank_frames": "reroll", "reroll_patience": 4,
}


def test_a_run_with_these_settings_succeeds_and_calls_none_unimplemented(tmp_path):
    settings_file = tmp_path / "s.txt"
    settings_file.write_text(json.dumps({"animation_mode": "2D", "W": 64, "H": 48,
                                         "max_frames": 3, **KEYS}))
    result = run_engine("--settings", settings_file, "--enable_animation_mode", "--outdir",
                        tmp_path, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    assert len(frames_of(tmp_path / "StableFun", start_event(result)["timestring"])) == 3
    warnings = [json.loads(line)["message"] for line in result.stdout.splitlines()
                if '"warning"' in line]
    for message in warnings:
        assert not any(key in message for key in KEYS), message
