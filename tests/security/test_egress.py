"""The egress policy (edge/egress.py) and the image fetcher over real sockets: every spelling of an inner
address is refused with the machine's own resolver, redirects are checked hop by hop, and a fetch is
capped in bytes and in total time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from edge import egress
from edge.inputs import ImageFetcher, InputImageError
from edge.settings import EdgeSettings
from tests.security.conftest import BadServer, endless, lying_length, redirect_to, serve_png, trickle
from tests.security.harness import png

LOC = ("body", "input_image")

INNER_URLS = [
    "http://127.0.0.1/",
    "http://2130706433/",  # decimal
    "http://017700000001/",  # octal, one number
    "http://0x7f.0.0.1/",  # hex part
    "http://127.1/",  # short form
    "http://0/",
    "http://0.0.0.0/",
    "http://localhost/",  # a name that resolves inward
    "http://user@127.0.0.1/",  # userinfo does not change the host
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "http://[64:ff9b::7f00:1]/",  # NAT64
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # shared address space (CGNAT)
    "http://224.0.0.1/",
    "http://255.255.255.255/",
]


def settings(**overrides: Any) -> EdgeSettings:
    return EdgeSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.mark.parametrize("url", INNER_URLS)
def test_every_spelling_of_an_inner_address_is_refused(url: str) -> None:
    with pytest.raises(egress.UrlRefused) as caught:
        asyncio.run(egress.pin(url, allow_private=False))
    assert caught.value.kind == "url_refused" and "private or reserved" in caught.value.message


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://a.example/x", "gopher://a/", "http:///x", ""])
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(egress.UrlRefused) as caught:
        asyncio.run(egress.pin(url, allow_private=True))
    assert "http(s)" in caught.value.message


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("2002:5db8:d822::1", False),  # 6to4 of a public address stays allowed
        ("2002:a00:1::1", True),  # 6to4 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True),  # Teredo client 10.0.0.1
        ("93.184.216.34", False),
    ],
)
def test_embedded_ipv4_is_judged_by_what_it_embeds(address: str, refused: bool) -> None:
    assert egress.address_refused(address) is refused


def test_the_private_switch_lets_inner_addresses_through() -> None:
    pinned = asyncio.run(egress.pin("http://127.0.0.1:9/x", allow_private=True))
    assert pinned.target.host == "127.0.0.1" and pinned.headers == {}


def test_a_public_name_is_pinned_to_the_address_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    monkeypatch.setattr(egress, "resolve", resolve)
    pinned = asyncio.run(egress.pin("https://img.example:8443/a.png", allow_private=False))
    assert str(pinned.target) == "https://93.184.216.34:8443/a.png"
    assert pinned.headers == {"Host": "img.example:8443"}
    assert pinned.extensions == {"sni_hostname": "img.example"}


def test_webhook_targets_follow_the_same_switch() -> None:
    with pytest.raises(egress.UrlRefused):
        asyncio.run(egress.pin_webhook("http://127.0.0.1/hook", settings()))
    pinned = asyncio.run(egress.pin_webhook("http://127.0.0.1/hook", settings(allow_private_urls=True)))
    assert pinned.target.host == "127.0.0.1"


# ---- real servers ---------------------------------------------------------------------------------------


def fetch(url: str, **overrides: Any) -> bytes:
    async def run() -> bytes:
        fetcher = ImageFetcher(settings(**overrides))
        try:
            return await fetcher.fetch(url, LOC)
        finally:
            await fetcher.close()

    return asyncio.run(run())


def refusal(url: str, **overrides: Any) -> InputImageError:
    with pytest.raises(InputImageError) as caught:
        fetch(url, **overrides)
    assert caught.value.loc == LOC
    return caught.value


@pytest.fixture
def outer_and_inner(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An "outside" server on 127.0.0.2, which the policy is told to treat as public, and an inner one
    on 127.0.0.1 holding a secret; everything else keeps the real rules."""
    real = egress.address_refused
    monkeypatch.setattr(egress, "address_refused", lambda a: a != "127.0.0.2" and real(a))
    outer, inner = BadServer("127.0.0.2"), BadServer("127.0.0.1")
    inner.behaviours["/secret"] = serve_png
    outer.behaviours["/image"] = serve_png
    yield outer, inner
    outer.close()
    inner.close()


def test_the_outside_server_is_reachable(outer_and_inner: Any) -> None:
    outer, _ = outer_and_inner
    outer.behaviours["/hop"] = redirect_to("/image")
    assert fetch(outer.url("/hop")) == png()


@pytest.mark.parametrize(
    "inward",
    [
        "http://127.0.0.1:{port}/secret",
        "http://2130706433:{port}/secret",
        "http://localhost:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "http://0.0.0.0:{port}/secret",
    ],
)
def test_a_redirect_inward_is_refused_before_it_is_followed(outer_and_inner: Any, inward: str) -> None:
    outer, inner = outer_and_inner
    outer.behaviours["/start"] = redirect_to(inward.format(port=inner.port))
    error = refusal(outer.url("/start"))
    assert error.kind == "url_refused" and inner.hits == [] and outer.hits == ["/start"]


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "gopher://127.0.0.2/x", "http://127.0.0.2:99999/x", "http://[::1"]
)
def test_a_redirect_to_another_scheme_or_garbage_is_refused(outer_and_inner: Any, location: str) -> None:
    outer, _ = outer_and_inner
    outer.behaviours["/start"] = redirect_to(location)
    # httpx itself rejects an unparsable Location (RemoteProtocolError): unreachable, still a clean refusal.
    assert refusal(outer.url("/start")).kind in ("url_refused", "url_unreachable")
    assert outer.hits == ["/start"]


def test_a_redirect_loop_stops_at_the_limit(outer_and_inner: Any) -> None:
    outer, _ = outer_and_inner
    outer.behaviours["/loop"] = redirect_to("/loop")
    assert "redirects" in refusal(outer.url("/loop"), url_max_redirects=2).message
    assert len(outer.hits) == 3


def test_a_trickling_server_hits_the_total_time_cap(bad_server: BadServer) -> None:
    bad_server.behaviours["/slow"] = trickle
    started = time.monotonic()
    error = refusal(bad_server.url("/slow"), allow_private_urls=True, url_total_timeout_s=1.0)
    assert error.kind == "url_unreachable" and "longer than 1 s" in error.message
    assert time.monotonic() - started < 5


def test_an_endless_body_is_cut_at_the_size_cap(bad_server: BadServer) -> None:
    bad_server.behaviours["/big"] = endless
    started = time.monotonic()
    error = refusal(bad_server.url("/big"), allow_private_urls=True, max_input_bytes=200_000)
    assert error.kind == "image_too_large" and "200000 bytes" in error.message
    assert time.monotonic() - started < 10


def test_a_declared_huge_length_is_refused_unread(bad_server: BadServer) -> None:
    bad_server.behaviours["/liar"] = lying_length
    assert refusal(bad_server.url("/liar"), allow_private_urls=True).kind == "image_too_large"


def fake_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    monkeypatch.setattr(egress, "resolve", resolve)


DNS = {
    "hooks.cluster": ["10.20.1.5"],  # inside the allowed network
    "db.cluster": ["10.30.0.9"],  # private, outside it
    "mixed.cluster": ["10.20.1.6", "10.30.0.10"],  # one address in, one out
    "receiver.internal": ["192.168.7.7"],  # allowed by its name
    "a.svc.local": ["172.16.4.4"],  # allowed by the wildcard
    "public.example": ["93.184.216.34"],
    "127.0.0.1": ["127.0.0.1"],
    "10.20.9.9": ["10.20.9.9"],
}
ALLOW = "10.20.0.0/16,127.0.0.1,receiver.internal,*.svc.local"


@pytest.mark.parametrize(
    ("url", "pinned"),
    [
        ("http://hooks.cluster:8080/h", "10.20.1.5"),
        ("http://10.20.9.9/h", "10.20.9.9"),
        ("http://127.0.0.1:9/h", "127.0.0.1"),
        ("http://receiver.internal/h", "192.168.7.7"),
        ("http://a.svc.local/h", "172.16.4.4"),
        ("http://public.example/h", "93.184.216.34"),
    ],
)
def test_the_webhook_allow_list_lets_its_networks_and_names_through(
    monkeypatch: pytest.MonkeyPatch, url: str, pinned: str
) -> None:
    fake_dns(monkeypatch, DNS)
    target = asyncio.run(egress.pin_webhook(url, settings(webhook_allow=ALLOW)))
    assert target.target.host == pinned


@pytest.mark.parametrize("url", ["http://db.cluster/h", "http://mixed.cluster/h", "http://b.svc.locals/h"])
def test_a_name_resolving_outside_the_allow_list_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    fake_dns(monkeypatch, {**DNS, "b.svc.locals": ["172.16.4.5"]})
    with pytest.raises(egress.UrlRefused) as caught:
        asyncio.run(egress.pin_webhook(url, settings(webhook_allow=ALLOW)))
    assert caught.value.kind == "url_refused" and "FLEET_WEBHOOK_ALLOW" in caught.value.message


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "bad_name!", "*.", "http://x"])
def test_a_bad_allow_list_entry_stops_the_edge_naming_it(entry: str) -> None:
    with pytest.raises(ValueError, match="webhook_allow") as caught:
        settings(webhook_allow=f"10.0.0.0/8,{entry}")
    assert repr(entry) in str(caught.value)
