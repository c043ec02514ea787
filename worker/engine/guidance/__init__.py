"""Fooocus's guidance on diffusers pipelines: sharpness, adaptive CFG, ADM scaling and FreeU V2.

`guided_unet(pipeline, settings)` installs all of it on the pipeline's UNet for one call
(see `unet.py`); the other modules are the formulas, each testable on plain tensors.
"""

from worker.engine.guidance.adm import AdmScalers
from worker.engine.guidance.freeu import FreeU
from worker.engine.guidance.unet import GuidanceSettings, RefinerRoute, guided_unet

__all__ = ["AdmScalers", "FreeU", "GuidanceSettings", "RefinerRoute", "guided_unet"]
