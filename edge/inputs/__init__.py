"""Input images: from an upload, base64, a `data:` URI or an http(s) URL to a verified PNG in storage.

Every image is read and checked (size cap, decompression-bomb limit, known format, full decode,
dimensions) before anything is stored or queued, so a bad image is a 422 naming its field, never a
failed job. URLs are fetched under `edge.egress`'s policy (unless `allow_private_urls` is on, no inner
address, every redirect hop checked, the connection pinned to the checked address), with a size cap,
per-read timeouts and a total deadline.
"""

from edge.inputs.decoding import ImageSource, InputImageError, Loc, decode_base64, is_empty, to_png
from edge.inputs.fetcher import ImageFetcher
from edge.inputs.images import ImageSet, PendingImage, prompt_slots, with_keys

__all__ = [
    "ImageFetcher",
    "ImageSet",
    "ImageSource",
    "InputImageError",
    "Loc",
    "PendingImage",
    "decode_base64",
    "is_empty",
    "prompt_slots",
    "to_png",
    "with_keys",
]
