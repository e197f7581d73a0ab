"""The one table of every Deforum setting.

Each row names a setting, its aliases (keys other Deforum versions use), its
type, default (the deforum-stable-diffusion notebook's), allowed values, help
text, the UI group it belongs to and whether the engine uses it.  The loader,
validation, CLI, the effective-settings file and the Blender properties are all
derived from this table; nothing else lists the keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .blank import REROLL_CHOICES
from .control_images import RESIZE_ALIASES, RESIZE_MODES
from .noise import NOISE_TYPES
from .depth_algorithm import DEPTH_ALGORITHMS
from .flow import METHODS as FLOW_METHODS
from .hybrid import HYBRID_FLOW_METHODS, MOTIONS as HYBRID_MOTIONS
from .hybrid_composite import (COMPOSITES as HYBRID_COMPOSITES, EQUALIZE as HYBRID_EQUALIZE,
                               HUMAN_MASKS as HYBRID_HUMAN_MASKS,
                               MASK_TYPES as HYBRID_MASK_TYPES)
from .samplers import SAMPLER_NAMES, WEBUI_NAMES
from .scene_flow import FLOW_SOURCES
from .vae import TILING_CHOICES

BOOKKEEPING = "bookkeeping"  # keys that never reach a scene: a tool's own, or read on loading

# Types: bool, int, float, str, path, choice, schedule (keyframe string),
# prompts (frame → prompt object), json (kept as given).
TYPES = ("bool", "int", "float", "str", "path", "choice", "schedule", "prompts", "json")


@dataclass(frozen=True)
class Setting:
    name: str
    type: str
    default: Any
    help: str
    group: str = "run"
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    choice_aliases: dict[str, str] = field(default_factory=dict)
    minimum: float | None = None
    maximum: float | None = None
    used: bool = True  # False: recognised, accepted, but has no effect in this engine
    modes: tuple[str, ...] = ()  # motion settings: the animation modes they act in
    camera: bool = False  # the camera bake writes it (in each of its modes)
    label: str = ""  # what a user reads (Blender's property name); "" on rows no UI shows
    soft_min: float | None = None  # slider range of a numeric schedule (typing goes beyond)
    soft_max: float | None = None
    # A schedule typed as text, never keyframed: its values are names (a sampler, a
    # checkpoint) or expressions of the seed, which no slider or F-curve can hold.
    text: bool = False

    @property
    def is_schedule(self) -> bool:
        return self.type == "schedule"

    @property
    def is_numeric_schedule(self) -> bool:
        """A schedule of plain numbers: a slider that keyframes, drivers and sound can move."""
        return self.is_schedule and not self.text


def _s(name: str, type_: str, default: Any, help_: str, group: str, **kw: Any) -> Setting:
    return Setting(name, type_, default, help_, group, **kw)


def _ignored(group: str, defaults: dict[str, Any], why: str) -> tuple[Setting, ...]:
    """Rows for keys Deforum files carry that this engine does not implement."""
    def kind(v: Any) -> str:
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            return "int"
        if isinstance(v, float):
            return "float"
        if isinstance(v, str):
            return "str"
        return "json"
    return tuple(Setting(k, kind(v), v, why, group, used=False) for k, v in defaults.items())


_2D, _3D = ("2D",), ("3D",)
# Modes with motion to show without a model (the motion preview); the others need one.
PREVIEW_MODES = ("2D", "3D", "Video Input")
_COLOR_ALIASES = {"LAB": "Match Frame 0 LAB", "HSV": "Match Frame 0 HSV",
                  "RGB": "Match Frame 0 RGB"}

SETTINGS: tuple[Setting, ...] = (
    # --- run / image --------------------------------------------------------
    _s("animation_mode", "choice", "None", "None = still images; 2D/3D = camera motion; "
       "Video Input = stylise a clip; Interpolation = morph between prompts", "run",
       choices=("None", "2D", "3D", "Video Input", "Interpolation")),
    _s("max_frames", "int", 1000, "Number of frames to render (0 … max_frames−1)", "run",
       minimum=1, maximum=1_000_000),
    _s("W", "int", 512, "Width in pixels (rounded down to a multiple of 8)", "run",
       aliases=("width",), minimum=8, maximum=8192),
    _s("H", "int", 512, "Height in pixels (rounded down to a multiple of 8)", "run",
       aliases=("height",), minimum=8, maximum=8192),
    _s("batch_name", "str", "StableFun", "Sub-folder of the output folder for this run; "
       "{timestring} is replaced", "output"),
    _s("fps", "float", 15.0, "Frames per second of the movie", "output", minimum=0.01,
       maximum=1000),
    _s("make_video", "bool", False, "Write {timestring}.mp4 after the frames", "output"),
    _s("skip_video_creation", "bool", True, "webui: do not write a movie (make_video wins "
       "when set)", "output", aliases=("skip_video_for_run_all",)),
    _s("preview_motion", "bool", False, "Render the motion without diffusion (warp, colour "
       "coherence, contrast, cadence); needs no model", "run"),
    _s("preview_tint", "bool", True, "Motion preview with scene depth and the pinhole warp: "
       "tint magenta what the camera uncovered (where a model would paint); diffused runs "
       "are never tinted", "run"),
    _s("model_path", "path", "", "Local Stable Diffusion checkpoint (diffusers folder or "
       ".safetensors/.ckpt)", "sampling"),
    _s("model_config", "path", "", "Diffusers config folder for a single-file checkpoint "
       "(default: detected from the checkpoint)", "sampling"),
    _s("device", "choice", "auto", "Where diffusion runs", "sampling",
       choices=("auto", "cuda", "mps", "cpu")),
    _s("half_precision", "bool", True, "fp16 on CUDA (CPU always uses fp32)", "sampling"),
    _s("vae_tiling", "choice", "auto", "Encode and decode frames in overlapping tiles to fit "
       "GPU memory: auto = when W×H is above 1024×1024, on = always (try it when a frame "
       "runs out of memory), off = never (tiles can leave faint seams)", "sampling",
       choices=TILING_CHOICES),
    _s("compile_unet", "bool", False, "torch.compile the UNet on CUDA: the first frame "
       "waits for the compile, later frames run faster; for long runs (skipped with a "
       "warning on CPU and MPS)", "sampling"),
    _s("resume_from_timestring", "bool", False, "Continue an interrupted run", "output"),
    _s("resume_timestring", "str", "20220829210106", "Timestring of the run to continue",
       "output"),
    # --- prompts ------------------------------------------------------------
    _s("animation_prompts", "prompts", {"0": "a beautiful landscape, trending on artstation"},
       "Frame → prompt; the latest key ≤ frame applies; text after --neg is negative",
       "prompts", aliases=("prompts",)),
    _s("negative_prompts", "prompts", {}, "Frame → negative prompt", "prompts",
       aliases=("neg_prompts",)),
    _s("animation_prompts_positive", "str", "", "Text put before every prompt (webui)",
       "prompts"),
    _s("animation_prompts_negative", "str", "", "Text added to every negative prompt (webui)",
       "prompts"),
    _s("still_prompts", "json", [], "Prompts of still-image runs (a list; the CLI's "
       "'prompts' list)", "prompts"),
    # --- motion -------------------------------------------------------------
    _s("angle", "schedule", "0:(0)", "2D rotation per frame, degrees counter-clockwise",
       "motion", modes=_2D, camera=True),
    _s("zoom", "schedule", "0:(1.04)", "2D zoom factor per frame (1.04 = 4 % in)", "motion",
       modes=_2D, camera=True),
    _s("translation_x", "schedule", "0:(10*sin(2*3.14*t/10))", "Move per frame: 2D pixels "
       "(+ right); 3D units (+ camera right)", "motion", modes=_2D + _3D, camera=True),
    _s("translation_y", "schedule", "0:(0)", "Move per frame: 2D pixels (+ down); 3D units "
       "(+ camera up)", "motion", modes=_2D + _3D, camera=True),
    _s("translation_z", "schedule", "0:(10)", "3D move per frame (+ camera forward)", "motion",
       modes=_3D, camera=True),
    _s("rotation_3d_x", "schedule", "0:(0)", "3D pitch per frame, degrees (+ up)", "motion",
       modes=_3D, camera=True),
    _s("rotation_3d_y", "schedule", "0:(0)", "3D yaw per frame, degrees (+ right)", "motion",
       modes=_3D, camera=True),
    _s("rotation_3d_z", "schedule", "0:(0)", "3D roll per frame, degrees (+ clockwise)",
       "motion", modes=_3D, camera=True),
    _s("border", "choice", "replicate", "2D edge fill: wrap, or replicate (any other value "
       "replicates, as in Deforum)", "motion", choices=("replicate", "wrap"),
       choice_aliases={"warp": "replicate"}, modes=_2D),
    _s("flip_2d_perspective", "bool", False, "2D perspective flip", "motion",
       aliases=("enable_perspective_flip",), modes=_2D),
    _s("perspective_flip_theta", "schedule", "0:(0)", "Perspective flip theta, degrees",
       "motion", modes=_2D),
    _s("perspective_flip_phi", "schedule", "0:(t%15)", "Perspective flip phi, degrees",
       "motion", modes=_2D),
    _s("perspective_flip_gamma", "schedule", "0:(0)", "Perspective flip gamma, degrees",
       "motion", modes=_2D),
    _s("perspective_flip_fv", "schedule", "0:(53)", "Perspective flip field of view, degrees",
       "motion", modes=_2D),
    _s("fov", "schedule", "0:(40)", "3D vertical field of view, degrees", "motion",
       aliases=("fov_schedule",), modes=_3D, camera=True),
    _s("lens_shift_x", "schedule", "0:(0)", "3D pinhole: lens shift, a fraction of the "
       "picture width (+ moves the view right, as Blender's Shift X)", "motion",
       modes=_3D, camera=True),
    _s("lens_shift_y", "schedule", "0:(0)", "3D pinhole: lens shift, a fraction of the "
       "picture height (+ moves the view up)", "motion", modes=_3D, camera=True),
    _s("near_plane", "schedule", "0:(200)", "3D near plane (no effect on the image, as in "
       "Deforum)", "motion", aliases=("near_schedule",), modes=_3D),
    _s("far_plane", "schedule", "0:(10000)", "3D far plane (no effect on the image)",
       "motion", aliases=("far_schedule",), modes=_3D),
    _s("padding_mode", "choice", "border", "3D warp edge fill", "motion",
       choices=("border", "reflection", "zeros"), modes=_3D),
    _s("sampling_mode", "choice", "bicubic", "3D warp resampling", "motion",
       choices=("bicubic", "bilinear", "nearest"), modes=_3D),
    _s("warp_model", "choice", "deforum", "deforum = Deforum's 3D formula; pinhole = "
       "physically correct reprojection with metric depth", "motion",
       choices=("deforum", "pinhole"), modes=_3D),
    # --- frame processing ---------------------------------------------------
    _s("noise_schedule", "schedule", "0:(0.02)", "Gaussian noise added before diffusion",
       "coherence"),
    _s("strength_schedule", "schedule", "0:(0.65)", "How much of the previous frame to keep "
       "(1 − denoising strength)", "coherence"),
    _s("contrast_schedule", "schedule", "0:(1.0)", "Contrast multiplier before diffusion",
       "coherence"),
    # Files without these keys (the notebook's, the local CLI's) keep Deforum's original
    # behaviour: uniform noise, no noise multiplier, no anti-blur. webui files carry them.
    _s("noise_type", "choice", "uniform", "uniform = white Gaussian grain; perlin = grain in "
       "blobs of perlin_w × perlin_h cells (webui default)", "coherence",
       choices=NOISE_TYPES),
    _s("perlin_w", "int", 8, "Perlin noise: cells across the width (first octave)",
       "coherence", minimum=1, maximum=100),
    _s("perlin_h", "int", 8, "Perlin noise: cells down the height (first octave)",
       "coherence", minimum=1, maximum=100),
    _s("perlin_octaves", "int", 4, "Perlin noise: octaves, each at twice the frequency",
       "coherence", minimum=1, maximum=10),
    _s("perlin_persistence", "float", 0.5, "Perlin noise: amplitude factor from one octave "
       "to the next", "coherence", minimum=0.0, maximum=1.0),
    _s("enable_noise_multiplier_scheduling", "bool", False, "Scale img2img's initial noise "
       "by noise_multiplier_schedule (webui default: on)", "coherence"),
    _s("noise_multiplier_schedule", "schedule", "0: (1.05)", "Factor on the noise img2img adds "
       "to the init latents (enable_noise_multiplier_scheduling)", "coherence"),
    _s("amount_schedule", "schedule", "0: (0)", "Anti-blur: unsharp-mask amount on the "
       "prepared init (0 = off; webui default 0.1)", "coherence"),
    _s("kernel_schedule", "schedule", "0: (5)", "Anti-blur: Gaussian kernel size in pixels "
       "(odd; 0 = from sigma)", "coherence"),
    _s("sigma_schedule", "schedule", "0: (1.0)", "Anti-blur: Gaussian blur sigma",
       "coherence"),
    _s("threshold_schedule", "schedule", "0: (0.0)", "Anti-blur: pixels differing from the "
       "blur by less than this (0…255) are kept", "coherence"),
    _s("color_coherence", "choice", "Match Frame 0 LAB", "Hold colours to a reference: the "
       "first frame (LAB/HSV/RGB), a picture (Image) or the video (Video Input)",
       "coherence", choices=("None", "Match Frame 0 LAB", "Match Frame 0 HSV",
                             "Match Frame 0 RGB", "Image", "Video Input"),
       choice_aliases=_COLOR_ALIASES),
    _s("color_coherence_image_path", "path", "", "Picture whose colours color_coherence "
       "'Image' holds to", "coherence"),
    _s("color_coherence_video_every_N_frames", "int", 1, "color_coherence 'Video Input': "
       "take the video frame as reference every N frames", "coherence", minimum=1),
    _s("legacy_colormatch", "bool", True, "Match only the warped init to the first warped "
       "frame (Deforum's old way; files without the key use it). Off: frame 0 is the "
       "reference and generated frames are matched too", "coherence"),
    _s("color_force_grayscale", "bool", False, "Turn the init and every generated frame grey",
       "coherence"),
    _s("reroll_blank_frames", "choice", "ignore", "A generated frame of one flat colour: "
       "reroll (diffuse again with seed + 1), interrupt (stop the run) or ignore",
       "coherence", choices=REROLL_CHOICES),
    _s("reroll_patience", "int", 10, "reroll: tries before the run stops", "coherence",
       minimum=1, maximum=1000),
    _s("diffusion_cadence", "int", 1, "Diffuse every n-th frame; frames between are warped "
       "and blended", "coherence", minimum=1, maximum=1000),
    # --- depth --------------------------------------------------------------
    _s("use_depth_warping", "bool", True, "Use estimated depth in 3D (off = flat)", "depth"),
    _s("depth_source", "choice", "model", "model = depth estimator; scene = supplied depth "
       "maps; none = flat", "depth", choices=("model", "scene", "none")),
    _s("depth_model_path", "path", "", "Local depth model folder (DPT or Depth Anything)",
       "depth"),
    _s("depth_maps_path", "path", "", "Folder of per-frame metric depth maps (depth_source "
       "= scene)", "depth"),
    _s("midas_weight", "float", 0.3, "Blend of two depth estimators (one estimator: "
       "ignored)", "depth", minimum=0.0, maximum=1.0),
    _s("save_depth_maps", "bool", False, "Write {timestring}_depth_{frame}.png", "depth",
       aliases=("save_depth_map",)),
    _s("inpaint_disocclusions", "bool", False, "With scene depth and the pinhole warp, diffuse "
       "keyframes only where the scene was hidden before (saved as "
       "{timestring}_disocclusion/{frame}.png); the rest is kept", "depth"),
    # --- sampling -----------------------------------------------------------
    _s("seed", "int", -1, "Seed of the first frame; −1 = random", "sampling",
       minimum=-1, maximum=2**32 - 1),
    _s("seed_behavior", "choice", "iter", "How the seed changes per diffused frame",
       "sampling", choices=("iter", "fixed", "random", "ladder", "alternate", "schedule")),
    _s("seed_iter_N", "int", 1, "iter: change the seed every N frames", "sampling",
       minimum=1),
    _s("seed_schedule", "schedule", "0:(s), 1:(-1), \"max_f-2\":(-1), \"max_f-1\":(s)",
       "Seed per frame when seed_behavior = schedule", "sampling", text=True),
    _s("sampler", "choice", "euler_ancestral", "Sampler", "sampling", choices=SAMPLER_NAMES,
       choice_aliases=WEBUI_NAMES),
    _s("steps", "int", 50, "Denoising steps of a full generation", "sampling",
       minimum=1, maximum=1000),
    _s("scale", "float", 7.0, "Classifier-free guidance scale", "sampling",
       aliases=("cfg_scale",)),
    _s("ddim_eta", "float", 0.0, "DDIM eta", "sampling", minimum=0.0),
    # --- per-frame schedules (webui) ------------------------------------------
    _s("cfg_scale_schedule", "schedule", "0: (7)", "Guidance scale per frame (a file "
       "without it uses its scale)", "sampling"),
    _s("enable_steps_scheduling", "bool", False, "Take the steps from steps_schedule",
       "sampling"),
    _s("steps_schedule", "schedule", "0: (25)", "Steps per frame (enable_steps_scheduling)",
       "sampling"),
    _s("enable_sampler_scheduling", "bool", False, "Take the sampler from sampler_schedule",
       "sampling", aliases=("enable_schedule_samplers",)),
    _s("sampler_schedule", "str", "0: (\"Euler a\")", "Sampler per frame, e.g. "
       "0: (\"Euler a\"), 10: (\"DPM++ 2M Karras\") (enable_sampler_scheduling)", "sampling"),
    _s("enable_checkpoint_scheduling", "bool", False, "Take the model from "
       "checkpoint_schedule", "sampling"),
    _s("checkpoint_schedule", "str", "", "Local checkpoint per frame, e.g. 0: (\"a.safetensors"
       "\"), 50: (\"b.safetensors\"); a relative name is looked up beside model_path; at most "
       "two models are held in memory (enable_checkpoint_scheduling)", "sampling"),
    _s("enable_clipskip_scheduling", "bool", False, "Take CLIP skip from clipskip_schedule",
       "sampling"),
    _s("clipskip_schedule", "schedule", "0: (2)", "CLIP skip per frame: 1 = the text "
       "encoder's last layer, 2 = the one before (enable_clipskip_scheduling)", "sampling"),
    _s("enable_subseed_scheduling", "bool", False, "Blend each frame's noise with a "
       "variation seed's (subseed_schedule, subseed_strength_schedule)", "sampling"),
    _s("subseed_schedule", "schedule", "0: (1)", "Variation seed per frame; −1 = random "
       "(enable_subseed_scheduling)", "sampling"),
    _s("subseed_strength_schedule", "schedule", "0: (0)", "How far each frame's noise moves "
       "toward the variation seed's: 0 = the seed's picture, 1 = the subseed's", "sampling"),
    _s("enable_ddim_eta_scheduling", "bool", False, "Take DDIM eta from ddim_eta_schedule",
       "sampling"),
    _s("ddim_eta_schedule", "schedule", "0: (0)", "DDIM eta per frame (samplers without eta "
       "ignore it) (enable_ddim_eta_scheduling)", "sampling"),
    _s("enable_ancestral_eta_scheduling", "bool", False, "webui ancestral eta: diffusers' "
       "ancestral schedulers take no eta, so it is recognised but not applied", "sampling",
       used=False),
    _s("ancestral_eta_schedule", "schedule", "0: (1)", "webui ancestral eta per frame: not "
       "applied (diffusers' ancestral schedulers take no eta)", "sampling", used=False),
    _s("aspect_ratio_schedule", "schedule", "0: (1)", "3D warp aspect ratio per frame "
       "(unless aspect_ratio_use_old_formula); deforum warp model only", "motion", modes=_3D),
    _s("aspect_ratio_use_old_formula", "bool", True, "3D warp aspect ratio W/H instead of "
       "aspect_ratio_schedule (on by default so files without the webui keys keep W/H)",
       "motion", modes=_3D),
    _s("transform_center_x", "schedule", "0: (0.5)", "2D rotation/zoom centre, a fraction of "
       "the width", "motion", modes=_2D),
    _s("transform_center_y", "schedule", "0: (0.5)", "2D rotation/zoom centre, a fraction of "
       "the height", "motion", modes=_2D),
    _s("n_batch", "int", 1, "Still images per prompt", "sampling", minimum=1),
    _s("filename_format", "str", "{timestring}_{index}_{prompt}.png", "Still-image file "
       "names", "output"),
    # --- init and masks -----------------------------------------------------
    _s("use_init", "bool", False, "Start from init_image", "init"),
    _s("init_image", "path", "", "Image (or, in None mode, folder of images) to start from",
       "init"),
    _s("strength", "float", 0.65, "How much of the init image to keep", "init",
       minimum=0.0, maximum=1.0),
    _s("strength_0_no_init", "bool", True, "Frame 0 without init image is txt2img", "init"),
    _s("use_mask", "bool", False, "Restrict changes to the white area of mask_file", "init"),
    _s("use_alpha_as_mask", "bool", False, "Use the init image's alpha as mask", "init"),
    _s("mask_file", "path", "", "Mask image (white = changes)", "init"),
    _s("invert_mask", "bool", False, "Swap white and black of the mask", "init"),
    _s("mask_brightness_adjust", "float", 1.0, "Mask brightness factor", "init"),
    _s("mask_contrast_adjust", "float", 1.0, "Mask contrast factor", "init"),
    _s("overlay_mask", "bool", True, "Paste the unmasked area back after diffusion", "init"),
    _s("mask_overlay_blur", "float", 5.0, "Blur of the pasted-back edge", "init",
       minimum=0.0),
    # --- guided images (the webui's looper) ----------------------------------
    _s("use_looper", "bool", False, "Guided images: pull 2D/3D keyframes toward the images "
       "of init_images (seeds then follow seed_schedule)", "init"),
    _s("init_images", "json", {}, "Guided images: frame → local image path (a JSON object "
       "or its text; keys may use max_f); never a URL", "init"),
    _s("image_strength_schedule", "schedule", "0:(0.75)", "Guided images: strength of each "
       "diffused frame (replaces strength_schedule)", "init"),
    _s("blendFactorMax", "schedule", "0:(0.35)", "Guided images: centre of the blend toward "
       "the guide", "init"),
    _s("blendFactorSlope", "schedule", "0:(0.25)", "Guided images: how far the blend swings "
       "(from max − slope up to about max + 0.42·slope)", "init"),
    _s("tweening_frames_schedule", "schedule", "0:(20)", "Guided images: frames over which "
       "the blend rises before it restarts (not cadence)", "init"),
    _s("color_correction_factor", "schedule", "0:(0.075)", "Guided images: how far each "
       "frame's colours are matched toward its guide", "init"),
    # --- video input / interpolation ---------------------------------------
    _s("video_init_path", "path", "", "Video (or folder of images) to stylise (Video Input)",
       "video"),
    _s("video_decoder", "choice", "opencv", "How Video Input frames are extracted: OpenCV "
       "(falls back to ffmpeg) or imageio-ffmpeg's ffmpeg", "video",
       choices=("opencv", "ffmpeg")),
    _s("extract_nth_frame", "int", 1, "Use every n-th video frame", "video", minimum=1),
    _s("extract_from_frame", "int", 0, "First video frame extracted (counted from 0; Video "
       "Input and hybrid video)", "video", minimum=0),
    _s("extract_to_frame", "int", -1, "Last video frame extracted (−1: to the end)", "video",
       minimum=-1),
    _s("overwrite_extracted_frames", "bool", True, "Re-extract the video frames", "video"),
    _s("use_mask_video", "bool", False, "Use a mask video (Video Input)", "video",
       aliases=("use_video_mask",)),
    _s("video_mask_path", "path", "", "Mask video", "video"),
    _s("add_soundtrack", "choice", "None", "Add the source clip's audio to the movie",
       "output", choices=("None", "Init Video", "File")),
    _s("soundtrack_path", "path", "", "Audio file for add_soundtrack = File", "output"),
    _s("interpolate_key_frames", "bool", False, "Interpolation: frames between prompt keys "
       "follow the key numbers", "interpolation"),
    _s("interpolate_x_frames", "int", 4, "Interpolation: frames between two prompts",
       "interpolation", minimum=0),
    # --- Parseq: read while loading, into the settings above (engine/parseq.py) ---
    _s("parseq_manifest", "json", "", "Parseq manifest: its JSON (text or object) or a local "
       "file; its per-frame values become the schedules and prompts (never a URL)",
       BOOKKEEPING),
    _s("parseq_use_deltas", "bool", True, "Parseq motion: take the per-frame changes "
       "(*_delta fields) rather than the absolute values", BOOKKEEPING),
    _s("parseq_non_schedule_overrides", "bool", True, "Parseq: the manifest's frame count, "
       "cadence and fps replace max_frames, diffusion_cadence and fps", BOOKKEEPING),
    # --- informational keys Deforum writes into its settings files ----------
    _s("timestring", "str", "", "Written by a run; ignored when loading", BOOKKEEPING),
    _s("outdir", "str", "", "Written by Deforum runs; the CLI's --outdir sets the output "
       "folder", BOOKKEEPING, used=False),
)

SETTINGS = SETTINGS + _ignored("unsupported", {
    # Guidance of the DSD notebook and the CLI (CLIP, aesthetics, colour, exposure …).
    "mean_scale": 0, "var_scale": 0, "exposure_scale": 0, "exposure_target": 0.5,
    "colormatch_scale": 0, "colormatch_image": "", "colormatch_n_colors": 4,
    "ignore_sat_weight": 0, "clip_name": "ViT-L/14", "clip_scale": 0, "aesthetics_scale": 0,
    "cutn": 1, "cut_pow": 0.0001, "init_mse_scale": 0, "init_mse_image": "",
    "blue_scale": 0, "gradient_wrt": "x0_pred", "gradient_add_to": "both",
    "decode_method": "linear", "grad_threshold_type": "dynamic",
    "clamp_grad_threshold": 0.2, "clamp_start": 0.2, "clamp_stop": 0.01,
    "grad_inject_timing": [1, 2, 3, 4, 5, 6, 7, 8, 9], "cond_uncond_sync": True,
    "dynamic_threshold": None, "static_threshold": None, "precision": "autocast",
    "C": 4, "f": 8, "bit_depth_output": 8, "n_samples": 1, "make_grid": False,
    "grid_rows": 2, "add_init_noise": False, "init_noise": 0.01,
    # Schedules of the webui this engine does not run.
    "pix2pix_img_cfg_scale_schedule": "0:(1.5)", "use_noise_mask": False,
    "subseed": -1, "subseed_strength": 0.0,  # older exports; the schedules replace them
    "mask_schedule": "0: (\"{video_mask}\")", "noise_mask_schedule": "0: (\"{video_mask}\")",
    "tiling": False, "restore_faces": False, "seed_resize_from_w": 0,
    "seed_resize_from_h": 0, "fill": "original", "full_res_mask": True,
    "full_res_mask_padding": 4,
    "make_gif": False, "delete_imgs": False, "delete_input_frames": False,
    "r_upscale_video": False, "r_upscale_factor": "x2",
    "r_upscale_model": "realesr-animevideov3", "r_upscale_keep_imgs": True,
    "frame_interpolation_engine": "None", "frame_interpolation_x_amount": 2,
    "frame_interpolation_slow_mo_enabled": False, "frame_interpolation_slow_mo_amount": 2,
    "frame_interpolation_keep_imgs": False, "frame_interpolation_use_upscaled": False,
}, "Recognised Deforum setting that this engine does not implement") + _ignored(BOOKKEEPING, {
    # Display/bookkeeping switches with nothing to do outside a notebook or A1111.
    "save_samples": True, "save_settings": True, "display_samples": True,
    "save_sample_per_step": False, "show_sample_per_step": False,
    "show_info_on_ui": True, "motion_preview_mode": False, "store_frames_in_ram": False,
    "image_path": "", "sd_model_name": "", "sd_model_hash": "", "deforum_git_commit_id": "",
}, "Notebook or webui bookkeeping; has no effect here")

# --- webui keys: the depth algorithm, keys older webui versions wrote, and the
# webui's five ControlNet units cn_1 … cn_5 (engine/controlnet.py) ------------------
CN_UNITS = (1, 2, 3, 4, 5)  # the webui's five ControlNet units, cn_1_* … cn_5_*
CONTROL_MODES = ("Balanced", "My prompt is more important", "ControlNet is more important")
# Each unit's keys: (suffix, type, default, help, label) with the webui's types and defaults.
_CN_KEYS: tuple[tuple[str, str, Any, str, str], ...] = (
    ("enabled", "bool", False, "Use this ControlNet unit", "Enabled"),
    ("model", "path", "None", "Local ControlNet: a diffusers folder (config.json + weights) or "
     "one .safetensors/.pth file; a webui model name is looked for beside model_path; None = "
     "no model (the unit is skipped)", "Model"),
    ("module", "str", "none", "Preprocessor of the control frames: none (ready-made control "
     "frames), canny, invert, binary, scribble_xdog, color, blur_gaussian, or depth… (uses "
     "depth_model_path)", "Preprocessor"),
    ("weight", "schedule", "0:(1)", "How strongly the unit steers each frame (0 = not at all)",
     "Weight"),
    ("guidance_start", "schedule", "0:(0.0)", "Share of a frame's denoising steps before the "
     "unit starts acting (0…1)", "Guidance Start"),
    ("guidance_end", "schedule", "0:(1.0)", "Share of a frame's denoising steps after which "
     "the unit stops acting (0…1)", "Guidance End"),
    ("vid_path", "path", "", "Control frames: an image (every frame), a video (frame k = "
     "output frame k) or a folder of images in natural order, one per frame", "Control Frames"),
    ("mask_vid_path", "path", "", "Where the unit acts: an image, video or folder of masks "
     "(white = control applies, black = none); empty = everywhere", "Control Mask"),
    ("overwrite_frames", "bool", True, "Re-extract the control video's frames on every run",
     "Re-extract Control Frames"),
    ("loopback_mode", "bool", False, "Use each frame's init picture (the previous frame, "
     "moved) as the control image instead of cn_N_vid_path", "Loopback"),
    ("low_vram", "bool", False, "Keep the ControlNet on the CPU between frames and move it to "
     "the device only while it runs (saves GPU memory, costs time)", "Low VRAM"),
    ("pixel_perfect", "bool", False, "Run the preprocessor at the resolution that maps its "
     "pixels one to one onto W×H (ignores processor_res)", "Pixel Perfect"),
    ("processor_res", "int", 64, "Shorter side, in pixels, the preprocessor works at",
     "Preprocessor Resolution"),
    ("threshold_a", "float", 64.0, "Preprocessor's first value: canny low threshold, binary "
     "threshold (0 = Otsu), scribble_xdog threshold, blur_gaussian sigma", "Threshold A"),
    ("threshold_b", "float", 64.0, "Preprocessor's second value: canny high threshold",
     "Threshold B"),
    ("resize_mode", "choice", "Inner Fit (Scale to Fit)", "How a control frame of another "
     "shape becomes W×H: scale to cover and crop, scale to fit inside and fill, or stretch",
     "Resize Mode"),
    ("control_mode", "choice", "Balanced", "Balanced; My prompt is more important (control "
     "fades toward the UNet's deep layers); ControlNet is more important (that, and only the "
     "prompt's half of guidance is controlled)", "Control Mode"),
)
_CN_EXTRA: dict[str, dict[str, Any]] = {
    "resize_mode": dict(choices=RESIZE_MODES, choice_aliases=RESIZE_ALIASES),
    "control_mode": dict(choices=CONTROL_MODES), "processor_res": dict(minimum=64, maximum=4096),
}


def _controlnet_rows() -> tuple[Setting, ...]:
    """The rows of the five ControlNet units (engine/controlnet.py)."""
    return tuple(_s(f"cn_{u}_{suffix}", type_, default,
                    f"ControlNet unit {u}: {help_[0].lower()}{help_[1:]}", "controlnet",
                    **_CN_EXTRA.get(suffix, {}))
                 for u in CN_UNITS for suffix, type_, default, help_, _ in _CN_KEYS)
SETTINGS = SETTINGS + (
    _s("depth_algorithm", "choice", "Midas-3-Hybrid", "Depth estimator of 3D runs, by its "
       "webui name: the MiDaS names use a DPT folder in depth_model_path, "
       "Depth-Anything-V2-Small a Depth Anything folder (Zoe, Leres and AdaBins: none here)",
       "depth", choices=DEPTH_ALGORITHMS),
) + _controlnet_rows(
) + _ignored("unsupported", {
    # Older webui versions: output and prompt switches since removed or renamed.
    "ffmpeg_crf": "17", "ffmpeg_preset": "slow", "histogram_matching": False,
}, "Recognised Deforum setting that this engine does not implement") + _ignored(BOOKKEEPING, {
    "override_settings_with_file": False, "custom_settings_file": "", "ffmpeg_location": "",
    "mp4_path": "", "render_steps": False, "path_name_modifier": "x0_pred",
    "use_manual_settings": False, "max_video_frames": 200, "prompt_weighting": False,
    "normalize_prompt_weights": True, "log_weighted_subprompts": False,
    "seed_enable_extras": False, "prompt": "",
}, "Written by older webui versions; has no effect here") + _ignored(BOOKKEEPING, {
    # The webui's render loop no longer reads it: it fed the MSE guidance, since removed.
    "hybrid_use_video_as_mse_image": False,
}, "Fed the webui's removed MSE guidance; the webui itself ignores it now")

# --- optical-flow cadence and redo (engine/flow.py, engine/redo.py) -----------------
SETTINGS = SETTINGS + (
    _s("optical_flow_cadence", "choice", "None", "2D/3D cadence: move both keyframes along "
       "the optical flow between them to each in-between position before blending, so "
       "moving content is not doubled (RAFT needs raft_model_path)", "coherence",
       choices=FLOW_METHODS),
    _s("raft_model_path", "path", "", "Local RAFT weights file for the flow settings set to "
       "RAFT: the .pth torchvision's raft_large or raft_small writes (e.g. "
       "raft_large_C_T_SKHT_V2-ff5fadd5.pth), or a .safetensors copy", "coherence"),
    _s("cadence_flow_factor_schedule", "schedule", "0: (1)", "How far optical-flow cadence "
       "moves the keyframes (1 = to the in-between position, 0 = plain blending)",
       "coherence"),
    _s("optical_flow_redo_generation", "choice", "None", "2D/3D: diffuse each keyframe once "
       "with a throw-away seed, warp that result along the flow from the init to it, and "
       "diffuse the warped picture as the init (twice the diffusion time)", "coherence",
       choices=FLOW_METHODS),
    _s("redo_flow_factor_schedule", "schedule", "0: (1)", "How far optical-flow redo warps "
       "the throw-away result along its flow", "coherence"),
    _s("diffusion_redo", "int", 0, "2D/3D: diffuse each keyframe this many extra times with "
       "throw-away seeds, each result the next init, before the real diffusion",
       "coherence", minimum=0, maximum=50),
)

# --- scene flow (engine/scene_flow.py): exact motion in place of estimated flow --------
SETTINGS = SETTINGS + (
    _s("flow_source", "choice", "estimate", "Where motion flow comes from: estimate = the "
       "chosen estimator measures it (webui); scene = per-frame flow files in "
       "scene_flow_path (the Blender scene's exact motion), used by hybrid motion 'Optical "
       "Flow' and optical-flow cadence (in 3D with depth_source scene); optical-flow redo "
       "always estimates", "coherence", choices=FLOW_SOURCES),
    _s("scene_flow_path", "path", "", "Folder of per-frame flow files {frame:05d}.npy, "
       "float32 H×W×2: where each pixel of frame k is in frame k+1 (flow_source = scene); "
       "with {frame:05d}_back.npy (frame k+1 back to k) and {frame:05d}_depth.npy beside "
       "them, cadence tweens keep the nearer surface where two meet", "coherence"),
)

# --- hybrid motion (engine/hybrid.py): the animation follows video_init_path's motion --
SETTINGS = SETTINGS + (
    _s("hybrid_motion", "choice", "None", "2D/3D: after the camera warp, move each frame "
       "the way video_init_path (a video or image folder) moves from the frame before: "
       "dense optical flow, or one Perspective/Affine transform from tracked corners",
       "hybrid", choices=HYBRID_MOTIONS),
    _s("hybrid_motion_use_prev_img", "bool", False, "Measure hybrid motion from the "
       "previous picture itself to the video's frame (pulls the animation onto the video) "
       "instead of between consecutive video frames", "hybrid"),
    _s("hybrid_flow_method", "choice", "RAFT", "Optical-flow estimator of hybrid motion "
       "'Optical Flow'; the webui's default RAFT needs raft_model_path, else pick DIS "
       "Medium, DIS Fine or Farneback", "hybrid",
       choices=HYBRID_FLOW_METHODS),
    _s("hybrid_flow_factor_schedule", "schedule", "0:(1)", "How far hybrid optical flow "
       "moves each frame (1 = as far as the video moves, 0 = not at all)", "hybrid"),
)

# --- hybrid compositing and the guide clip (engine/hybrid_composite.py, hybrid_clip.py) --
SETTINGS = SETTINGS + (
    _s("hybrid_composite", "choice", "None", "2D/3D: mix video_init_path's frame into each "
       "keyframe: after the warp and hybrid motion (Normal), between them (Before Motion) or "
       "into the diffused frame (After Generation)", "hybrid", choices=HYBRID_COMPOSITES),
    _s("hybrid_comp_alpha_schedule", "schedule", "0:(0.5)", "How much of the composite "
       "replaces the frame (0 = none, 1 = all: the video where no mask keeps the frame)",
       "hybrid"),
    _s("hybrid_comp_mask_type", "choice", "None", "Per-pixel choice between frame (white) "
       "and video (black): depth of the previous frame, depth of the video frame, their "
       "greys blended, or where they differ (Depth masks need depth_model_path)", "hybrid",
       choices=HYBRID_MASK_TYPES),
    _s("hybrid_comp_mask_blend_alpha_schedule", "schedule", "0:(0.5)", "Blend mask: how "
       "much of the video's grey (0 = the frame's, 1 = the video's)", "hybrid"),
    _s("hybrid_comp_mask_contrast_schedule", "schedule", "0:(1)", "Contrast of the "
       "composite mask (1 = unchanged)", "hybrid"),
    _s("hybrid_comp_mask_auto_contrast", "bool", False, "Stretch the composite mask between "
       "its low and high cutoff percentiles", "hybrid"),
    _s("hybrid_comp_mask_auto_contrast_cutoff_low_schedule", "schedule", "0:(0)",
       "Auto contrast: this percentile of the mask becomes black", "hybrid"),
    _s("hybrid_comp_mask_auto_contrast_cutoff_high_schedule", "schedule", "0:(100)",
       "Auto contrast: this percentile of the mask becomes white", "hybrid"),
    _s("hybrid_comp_mask_inverse", "bool", False, "Invert the composite mask", "hybrid"),
    _s("hybrid_comp_mask_equalize", "choice", "None", "Equalise the composite mask's "
       "histogram before the contrast, after it, or both", "hybrid", choices=HYBRID_EQUALIZE),
    _s("hybrid_comp_save_extra_frames", "bool", False, "Save each keyframe's composite mask, "
       "composite, result, video depth and hybrid flow into the batch's hybridframes folder",
       "hybrid"),
    _s("hybrid_flow_consistency", "bool", False, "Hybrid optical flow: check the flow "
       "against the backward flow and hold back pixels whose round trip misses", "hybrid"),
    _s("hybrid_consistency_blur", "int", 2, "Blur (sigma, pixels) of the consistency mask",
       "hybrid", minimum=0, maximum=10),
    _s("hybrid_use_first_frame_as_init_image", "bool", True, "Hybrid runs: the clip's first "
       "frame is frame 0's init image", "hybrid"),
    _s("hybrid_use_init_image", "bool", False, "Composite init_image instead of the clip's "
       "frames (max_frames then stays as set)", "hybrid"),
    _s("hybrid_generate_inputframes", "bool", False, "Webui: extract the clip first; here "
       "the clip is always extracted when needed and reused when already extracted",
       "hybrid"),
    _s("hybrid_generate_human_masks", "choice", "None", "Webui: write human masks of the "
       "clip; needs a matting model this engine cannot fetch, so none are made (a warning)",
       "hybrid", choices=HYBRID_HUMAN_MASKS),
)

# What users read: human words, unique among the rows a UI shows (the key stays the name).
LABELS: dict[str, str] = {
    "animation_mode": "Animation Mode", "max_frames": "Frame Count", "W": "Width",
    "H": "Height", "batch_name": "Batch Name", "fps": "Frame Rate", "make_video": "Write Movie",
    "skip_video_creation": "Skip Movie", "preview_motion": "Motion Preview",
    "preview_tint": "Tint Uncovered Areas",
    "model_path": "Model", "model_config": "Model Config", "device": "Device",
    "half_precision": "Half Precision", "resume_from_timestring": "Resume a Run",
    "resume_timestring": "Run to Resume", "animation_prompts": "Prompts",
    "negative_prompts": "Negative Prompts", "animation_prompts_positive": "Prompt Prefix",
    "animation_prompts_negative": "Negative Prompt Suffix", "still_prompts": "Still Prompts",
    "angle": "Rotation", "zoom": "Zoom", "translation_x": "Move X", "translation_y": "Move Y",
    "translation_z": "Move Forward", "rotation_3d_x": "Pitch", "rotation_3d_y": "Yaw",
    "rotation_3d_z": "Roll", "border": "Edge Fill", "flip_2d_perspective": "Perspective Flip",
    "perspective_flip_theta": "Flip Theta", "perspective_flip_phi": "Flip Phi",
    "perspective_flip_gamma": "Flip Gamma", "perspective_flip_fv": "Flip Field of View",
    "fov": "Field of View", "lens_shift_x": "Lens Shift X", "lens_shift_y": "Lens Shift Y",
    "near_plane": "Near Plane", "far_plane": "Far Plane", "padding_mode": "Warp Edge Fill",
    "sampling_mode": "Warp Resampling", "warp_model": "Warp Model", "noise_schedule": "Noise",
    "strength_schedule": "Frame Strength", "contrast_schedule": "Contrast",
    "color_coherence": "Color Coherence", "diffusion_cadence": "Cadence",
    "use_depth_warping": "Depth Warping", "depth_source": "Depth Source",
    "depth_model_path": "Depth Model", "depth_maps_path": "Depth Maps Folder",
    "midas_weight": "Depth Model Blend", "depth_algorithm": "Depth Algorithm",
    "save_depth_maps": "Save Depth Maps",
    "inpaint_disocclusions": "Inpaint Revealed Areas", "seed": "Seed",
    "seed_behavior": "Seed Behavior", "seed_iter_N": "Seed Change Interval",
    "seed_schedule": "Seed Schedule", "sampler": "Sampler", "steps": "Steps",
    "scale": "Guidance Scale", "ddim_eta": "DDIM Eta", "n_batch": "Images per Prompt",
    "filename_format": "File Name Format", "use_init": "Use Init Image",
    "init_image": "Init Image", "strength": "Init Strength",
    "strength_0_no_init": "Text-to-Image First Frame", "use_mask": "Use Mask",
    "use_alpha_as_mask": "Alpha as Mask", "mask_file": "Mask Image",
    "invert_mask": "Invert Mask", "mask_brightness_adjust": "Mask Brightness",
    "mask_contrast_adjust": "Mask Contrast", "overlay_mask": "Overlay Mask",
    "mask_overlay_blur": "Overlay Blur", "video_init_path": "Input Video",
    "video_decoder": "Video Decoder", "extract_nth_frame": "Every Nth Frame",
    "overwrite_extracted_frames": "Re-extract Frames", "use_mask_video": "Use Mask Video",
    "video_mask_path": "Mask Video", "add_soundtrack": "Soundtrack",
    "soundtrack_path": "Soundtrack File", "interpolate_key_frames": "Follow Key Frames",
    "interpolate_x_frames": "Frames Between Prompts", "timestring": "Timestring",
    "use_looper": "Guided Images", "init_images": "Guide Images",
    "image_strength_schedule": "Guided Strength", "blendFactorMax": "Guide Blend",
    "blendFactorSlope": "Guide Blend Swing", "tweening_frames_schedule": "Guide Blend Period",
    "color_correction_factor": "Guide Colour Pull",
}
# Noise, anti-blur, blank frames and the webui's colour-coherence options.
LABELS.update({
    "noise_type": "Noise Type", "perlin_w": "Perlin Cells Across",
    "perlin_h": "Perlin Cells Down", "perlin_octaves": "Perlin Octaves",
    "perlin_persistence": "Perlin Persistence",
    "enable_noise_multiplier_scheduling": "Scale Init Noise",
    "noise_multiplier_schedule": "Init Noise Scale", "amount_schedule": "Anti-Blur Amount",
    "kernel_schedule": "Anti-Blur Kernel", "sigma_schedule": "Anti-Blur Sigma",
    "threshold_schedule": "Anti-Blur Threshold",
    "color_coherence_image_path": "Colour Reference Image",
    "color_coherence_video_every_N_frames": "Video Reference Every",
    "legacy_colormatch": "Legacy Colour Match", "color_force_grayscale": "Force Greyscale",
    "reroll_blank_frames": "Blank Frames", "reroll_patience": "Reroll Patience",
})
# Optical-flow cadence and redo.
LABELS.update({
    "optical_flow_cadence": "Optical Flow Cadence", "cadence_flow_factor_schedule":
    "Cadence Flow Factor", "optical_flow_redo_generation": "Optical Flow Redo",
    "redo_flow_factor_schedule": "Redo Flow Factor", "diffusion_redo": "Diffusion Redos",
    "raft_model_path": "RAFT Weights",
})
# Hybrid motion and scene flow.
LABELS.update({
    "flow_source": "Flow Source", "scene_flow_path": "Scene Flow Folder",
    "hybrid_motion": "Hybrid Motion", "hybrid_motion_use_prev_img": "Hybrid from Last Image",
    "hybrid_flow_method": "Hybrid Flow Method", "hybrid_flow_factor_schedule":
    "Hybrid Flow Factor",
})
# Hybrid compositing and the guide clip.
LABELS.update({
    "extract_from_frame": "Extract From Frame", "extract_to_frame": "Extract To Frame",
    "hybrid_composite": "Hybrid Composite", "hybrid_comp_alpha_schedule": "Composite Alpha",
    "hybrid_comp_mask_type": "Composite Mask", "hybrid_comp_mask_blend_alpha_schedule":
    "Mask Blend Alpha", "hybrid_comp_mask_contrast_schedule": "Composite Mask Contrast",
    "hybrid_comp_mask_auto_contrast": "Mask Auto Contrast",
    "hybrid_comp_mask_auto_contrast_cutoff_low_schedule": "Auto Contrast Low Cutoff",
    "hybrid_comp_mask_auto_contrast_cutoff_high_schedule": "Auto Contrast High Cutoff",
    "hybrid_comp_mask_inverse": "Invert Composite Mask",
    "hybrid_comp_mask_equalize": "Equalise Composite Mask",
    "hybrid_comp_save_extra_frames": "Save Hybrid Frames",
    "hybrid_flow_consistency": "Flow Consistency Mask",
    "hybrid_consistency_blur": "Consistency Blur",
    "hybrid_use_first_frame_as_init_image": "Clip Starts the Run",
    "hybrid_use_init_image": "Composite Init Image",
    "hybrid_generate_inputframes": "Extract Clip Frames",
    "hybrid_generate_human_masks": "Human Masks",
})
# GPU memory and speed.
LABELS.update({"vae_tiling": "VAE Tiling", "compile_unet": "Compile UNet"})
# Slider ranges of the numeric schedules: where useful values lie (per frame for motion).
SOFT_RANGES: dict[str, tuple[float, float]] = {
    "angle": (-10.0, 10.0), "zoom": (0.9, 1.1), "translation_x": (-20.0, 20.0),
    "translation_y": (-20.0, 20.0), "translation_z": (-20.0, 20.0),
    "rotation_3d_x": (-5.0, 5.0), "rotation_3d_y": (-5.0, 5.0), "rotation_3d_z": (-5.0, 5.0),
    "perspective_flip_theta": (-45.0, 45.0), "perspective_flip_phi": (-45.0, 45.0),
    "perspective_flip_gamma": (-45.0, 45.0), "perspective_flip_fv": (10.0, 120.0),
    "fov": (10.0, 120.0), "lens_shift_x": (-1.0, 1.0), "lens_shift_y": (-1.0, 1.0),
    "near_plane": (0.0, 1000.0), "far_plane": (100.0, 20000.0),
    "noise_schedule": (0.0, 0.2), "strength_schedule": (0.0, 1.0),
    "contrast_schedule": (0.5, 1.5),
    "noise_multiplier_schedule": (0.8, 1.2), "amount_schedule": (0.0, 1.0),
    "kernel_schedule": (0.0, 15.0), "sigma_schedule": (0.0, 5.0),
    "threshold_schedule": (0.0, 50.0),
    "image_strength_schedule": (0.0, 1.0), "blendFactorMax": (0.0, 1.0),
    "blendFactorSlope": (0.0, 1.0), "tweening_frames_schedule": (1.0, 100.0),
    "color_correction_factor": (0.0, 1.0),
    "cadence_flow_factor_schedule": (0.0, 2.0), "redo_flow_factor_schedule": (0.0, 2.0),
    "hybrid_flow_factor_schedule": (0.0, 2.0),
    "hybrid_comp_alpha_schedule": (0.0, 1.0), "hybrid_comp_mask_blend_alpha_schedule": (0.0, 1.0),
    "hybrid_comp_mask_contrast_schedule": (0.0, 2.0),
    "hybrid_comp_mask_auto_contrast_cutoff_low_schedule": (0.0, 100.0),
    "hybrid_comp_mask_auto_contrast_cutoff_high_schedule": (0.0, 100.0),
}
# Labels and slider ranges of the webui's per-frame schedules.
LABELS.update({
    "cfg_scale_schedule": "Guidance Schedule", "enable_steps_scheduling": "Schedule Steps",
    "steps_schedule": "Steps Schedule", "enable_sampler_scheduling": "Schedule Sampler",
    "sampler_schedule": "Sampler Schedule", "enable_checkpoint_scheduling": "Schedule Model",
    "checkpoint_schedule": "Model Schedule", "enable_clipskip_scheduling": "Schedule CLIP Skip",
    "clipskip_schedule": "CLIP Skip Schedule", "enable_subseed_scheduling": "Variation Seeds",
    "subseed_schedule": "Variation Seed Schedule",
    "subseed_strength_schedule": "Variation Strength",
    "enable_ddim_eta_scheduling": "Schedule DDIM Eta", "ddim_eta_schedule": "DDIM Eta Schedule",
    "aspect_ratio_schedule": "Warp Aspect Ratio",
    "aspect_ratio_use_old_formula": "Aspect Ratio from Size",
    "transform_center_x": "Rotation Center X", "transform_center_y": "Rotation Center Y",
})
SOFT_RANGES.update({
    "cfg_scale_schedule": (1.0, 20.0), "steps_schedule": (1.0, 150.0),
    "clipskip_schedule": (1.0, 4.0), "subseed_schedule": (0.0, 4294967295.0),
    "subseed_strength_schedule": (0.0, 1.0), "ddim_eta_schedule": (0.0, 1.0),
    "aspect_ratio_schedule": (0.25, 4.0), "transform_center_x": (0.0, 1.0),
    "transform_center_y": (0.0, 1.0),
})
# The ControlNet units.
LABELS.update({f"cn_{u}_{suffix}": f"Unit {u} {label}"
               for u in CN_UNITS for suffix, _, _, _, label in _CN_KEYS})
SOFT_RANGES.update({f"cn_{u}_{suffix}": (0.0, 2.0 if suffix == "weight" else 1.0)
                    for u in CN_UNITS for suffix in ("weight", "guidance_start", "guidance_end")})
SETTINGS = tuple(
    replace(s, label=LABELS.get(s.name, ""), soft_min=SOFT_RANGES.get(s.name, (None, None))[0],
            soft_max=SOFT_RANGES.get(s.name, (None, None))[1])
    for s in SETTINGS)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
ALIASES: dict[str, str] = {a: s.name for s in SETTINGS for a in s.aliases}


def motion_keys(mode: str) -> tuple[str, ...]:
    """The motion settings that act in animation mode ``mode``, in table order."""
    return tuple(s.name for s in SETTINGS if mode in s.modes)


def camera_keys(mode: str) -> tuple[str, ...]:
    """The motion settings the camera bake writes in ``mode`` ('2D' or '3D'), in table order."""
    return tuple(s.name for s in SETTINGS if s.camera and mode in s.modes)
