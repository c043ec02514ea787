"""Fooocus's prompt handling on diffusers: styles, wildcards, arrays, inline LoRAs, the Fooocus V2
expansion and the multi-workload CLIP encoding (fooocus-engine.md §4.1, §8).

Usage:

    prompts = PromptEngine(models_dir, device="cuda")
    plan = prompts.plan(params.prompt, params.negative_prompt, params.style_selections, seed=seed, index=i)
    kwargs = prompts.embeddings(pipeline, plan, clip_skip=2, guidance_scale=4.0, job=params)
    pipeline(**kwargs, ...)          # prompt_embeds, pooled_prompt_embeds and the negatives
    metadata.update(plan.metadata())  # full_prompt, full_negative_prompt, prompt_expansion, ...
"""

from worker.engine.prompts.planner import PromptEngine, PromptPlan

__all__ = ["PromptEngine", "PromptPlan"]
