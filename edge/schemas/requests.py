"""Request bodies as Fooocus-API clients send them."""

from __future__ import annotations

import random

from pydantic import ConfigDict, Field

from contracts import MAX_SEED, GenerationParams


class CommonRequest(GenerationParams):
    """`POST /v1/generation/text-to-image`: the generation fields plus how to answer."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    require_base64: bool = Field(False, description="Add each image as a `data:` URI to the result.")
    async_process: bool = Field(False, description="Answer with the job object at once.")
    webhook_url: str | None = Field("", description="Per-job webhook; empty uses the configured default.")

    def generation_params(self) -> GenerationParams:
        """The worker's part, with a random seed resolved here so every retry draws the same one."""
        seed = self.image_seed
        if not 0 <= seed <= MAX_SEED:
            seed = random.randint(0, MAX_SEED)
        fields = self.model_dump(include=set(GenerationParams.model_fields))
        return GenerationParams.model_validate({**fields, "image_seed": seed})
