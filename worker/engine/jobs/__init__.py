"""Every Fooocus-API job kind on one SDXL engine: text-to-image, upscale/vary, inpaint/outpaint, image
prompts (ControlNet, IP-Adapter), enhance.

Usage:

    jobs = JobEngine(SDXLEngine(pipeline), ModelFolders(models_dir))
    for generated in jobs.upscale_or_vary(params, JobImages(job.inputs, images), seeds, on_step):
        store(generated.image)

One module per kind (`uov`, `inpaint`, `image_prompts`, `enhance`), each a few functions over the
`JobEngine` (`engine.py`: the dispatch on the job's type and the diffusion step the kinds share) and one
`ImageRun` per image (`tasks.py`).
Each entry yields `GeneratedImage`s one at a time and calls `on_step` after every denoising step, like
`SDXLEngine.text_to_image`, so progress, previews and stops work for every kind. Img2img and inpaint
are `from_pipe` siblings of the loaded pipeline: they share its UNet, VAE and text encoders.
Fooocus's image sizes are reproduced (§5 shape ceilings, §6 crop box, scaled to the checkpoint's native
side); its finer diffusion (§6–§7: inpaint patch and per-call blending, the feathered paste, concatenated
IP attention, noise-level stops, softness) is not yet: straightforward diffusers semantics there.
"""

from worker.engine.images import JobImages
from worker.engine.img2img import denoise_schedule, upscale_factor
from worker.engine.jobs.engine import JobEngine

__all__ = ["JobEngine", "JobImages", "denoise_schedule", "upscale_factor"]
