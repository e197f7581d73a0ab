"""Deforum sampler names → diffusers schedulers (never a hand-written sampler).

k-diffusion samplers in Deforum use CompVis' linspace sigmas without Karras
spacing; diffusers reproduces that with ``timestep_spacing="linspace"``.  DDIM
and PLMS keep the CompVis uniform ("leading") spacing of the checkpoint's own
scheduler config.  Names ending in ``_karras`` switch to Karras sigmas.
"""

from __future__ import annotations

from typing import Any

# name → (diffusers class, extra config)
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "klms": ("LMSDiscreteScheduler", {}),
    "dpm2": ("KDPM2DiscreteScheduler", {}),
    "dpm2_ancestral": ("KDPM2AncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "plms": ("PNDMScheduler", {"skip_prk_steps": True}),
    "ddim": ("DDIMScheduler", {}),
    # DPM-Solver "fast" has no diffusers twin; the single-step DPM-Solver is closest.
    "dpm_fast": ("DPMSolverSinglestepScheduler", {}),
    "dpm_adaptive": ("DPMSolverSinglestepScheduler", {}),
    "dpmpp_2s_a": ("DPMSolverSinglestepScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "unipc": ("UniPCMultistepScheduler", {}),
}
_UNIFORM = {"plms", "ddim"}
_KARRAS_ABLE = {"klms", "dpm2", "dpm2_ancestral", "heun", "euler", "dpm_fast", "dpm_adaptive",
                "dpmpp_2s_a", "dpmpp_2m", "dpmpp_2m_sde"}
SAMPLER_NAMES = tuple(SAMPLERS) + tuple(f"{n}_karras" for n in sorted(_KARRAS_ABLE))

# sd-webui-deforum / A1111 display names.
WEBUI_NAMES = {
    "Euler a": "euler_ancestral", "Euler": "euler", "LMS": "klms", "LMS Karras": "klms_karras",
    "Heun": "heun", "DPM2": "dpm2", "DPM2 a": "dpm2_ancestral", "DPM2 Karras": "dpm2_karras",
    "DPM2 a Karras": "dpm2_ancestral_karras", "DPM++ 2S a": "dpmpp_2s_a",
    "DPM++ 2S a Karras": "dpmpp_2s_a_karras", "DPM++ 2M": "dpmpp_2m",
    "DPM++ 2M Karras": "dpmpp_2m_karras", "DPM++ SDE": "dpmpp_2m_sde",
    "DPM++ SDE Karras": "dpmpp_2m_sde_karras", "DPM++ 2M SDE": "dpmpp_2m_sde",
    "DPM++ 2M SDE Karras": "dpmpp_2m_sde_karras", "DPM fast": "dpm_fast",
    "DPM adaptive": "dpm_adaptive", "DDIM": "ddim", "PLMS": "plms", "UniPC": "unipc",
}


def make_scheduler(name: str, base_config: dict[str, Any]):
    """A fresh diffusers scheduler for ``name`` built on the checkpoint's config."""
    import diffusers

    karras = name.endswith("_karras")
    base = name[: -len("_karras")] if karras else name
    if base not in SAMPLERS:
        raise ValueError(f"sampler {name!r} is not one of {', '.join(SAMPLER_NAMES)}")
    class_name, extra = SAMPLERS[base]
    cls = getattr(diffusers, class_name)
    config = {k: v for k, v in dict(base_config).items() if not k.startswith("_")}
    overrides: dict[str, Any] = dict(extra)
    if base not in _UNIFORM:
        overrides["timestep_spacing"] = "linspace"
        overrides["steps_offset"] = 0
    if base in _KARRAS_ABLE:
        overrides["use_karras_sigmas"] = karras
    return cls.from_config({**config, **overrides})
