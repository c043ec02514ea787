"""Fetching input URLs under `edge.egress`'s policy: unless `allow_private_urls` is on, no inner address,
every redirect hop checked, the connection pinned to the checked address; a size cap, per-read timeouts
and a total deadline."""

from __future__ import annotations

import asyncio

import httpx

from edge import egress
from edge.inputs.decoding import InputImageError, Loc
from edge.settings import EdgeSettings


class ImageFetcher:
    """Fetches input URLs under the edge's rules; one HTTP client for the process."""

    def __init__(self, settings: EdgeSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        timeout = httpx.Timeout(settings.url_read_timeout_s, connect=settings.url_connect_timeout_s)
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport)

    async def close(self) -> None:
        await self.client.aclose()

    async def fetch(self, url: str, loc: Loc) -> bytes:
        """The body at `url`, every hop checked; the whole fetch, redirects included, is bounded in time
        (the per-read timeout alone would let a server trickle a byte a second for hours)."""
        limit = self.settings.url_total_timeout_s
        try:
            async with asyncio.timeout(limit):
                return await self._follow(url, loc)
        except TimeoutError:
            raise InputImageError(
                loc, f"fetching the URL took longer than {limit:g} s", "url_unreachable"
            ) from None

    async def _follow(self, url: str, loc: Loc) -> bytes:
        current: str | httpx.URL = url
        for _ in range(self.settings.url_max_redirects + 1):
            response = await self._get(current, loc)
            if isinstance(response, httpx.URL):
                current = response
                continue
            return response
        raise InputImageError(loc, f"more than {self.settings.url_max_redirects} redirects", "url_refused")

    async def _get(self, url: str | httpx.URL, loc: Loc) -> bytes | httpx.URL:
        try:
            pinned = await egress.pin(url, self.settings.allow_private_urls)
        except egress.UrlRefused as refused:
            raise InputImageError(loc, refused.message, refused.kind) from None
        cap = self.settings.max_input_bytes
        try:
            # Ask for no content coding; a server that compresses anyway is capped on the decoded bytes.
            headers = {**pinned.headers, "Accept-Encoding": "identity"}
            request = self.client.build_request(
                "GET", pinned.target, headers=headers, extensions=pinned.extensions
            )
            response = await self.client.send(request, stream=True)
            try:
                if response.is_redirect:
                    return _redirect_target(url, response.headers.get("location", ""), loc)
                if response.status_code != 200:
                    raise InputImageError(
                        loc, f"fetching the URL answered HTTP {response.status_code}", "url_unreachable"
                    )
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > cap:
                    raise InputImageError(loc, f"image is larger than {cap} bytes", "image_too_large")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > cap:
                        raise InputImageError(loc, f"image is larger than {cap} bytes", "image_too_large")
                return bytes(body)
            finally:
                await response.aclose()
        except httpx.HTTPError as error:
            raise InputImageError(
                loc, f"cannot fetch the URL: {type(error).__name__}", "url_unreachable"
            ) from None


def _redirect_target(url: str | httpx.URL, location: str, loc: Loc) -> httpx.URL:
    # Relative to the URL as given, not to the pinned address; the next hop is checked like the first.
    try:
        return egress.parse_url(url).join(location)
    except (httpx.InvalidURL, egress.UrlRefused, ValueError):
        raise InputImageError(loc, "the URL redirects to an invalid URL", "url_refused") from None
