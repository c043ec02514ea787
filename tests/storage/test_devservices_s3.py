"""``devservices.s3``: weed mini on loopback, on the ports we chose and no others, started and stopped."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import astuple
from pathlib import Path

import pytest

from devservices.s3 import (
    PID_FILE,
    WeedPorts,
    WeedServer,
    WeedStartError,
    free_ports,
    main,
    port_answers,
    start_weed,
    stop_detached,
)

pytestmark = pytest.mark.integration

_LISTEN = "0A"
GRPC = ("master", "volume", "filer", "s3", "admin")


def listening_sockets(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state == _LISTEN and inode in inodes:
                addr_hex, port_hex = local.rsplit(":", 1)
                addr = socket.inet_ntoa(bytes.fromhex(addr_hex)[::-1]) if len(addr_hex) == 8 else addr_hex
                found.add((addr, int(port_hex, 16)))
    return found


@pytest.fixture
def bound_not_listening() -> Iterator[int]:
    """A port another socket holds bound (so weed cannot take it) without accepting connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_weed_listens_only_on_the_chosen_loopback_ports(weed_server: WeedServer) -> None:
    # start_weed returns once every port is open (the admin server opens last), so no waiting here.
    expected = {("127.0.0.1", port) for port in astuple(weed_server.ports)}
    assert listening_sockets(weed_server.process.pid) == expected
    assert 8888 not in astuple(weed_server.ports)


def test_pick_keeps_a_requested_s3_port_and_frees_the_rest() -> None:
    ports = WeedPorts.pick(8333)
    assert ports.s3 == 8333
    assert len(set(astuple(ports))) == len(astuple(ports))
    assert 8333 not in astuple(WeedPorts.pick())[1:]


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(12)
    assert len(set(ports)) == 12
    assert not any(port_answers(port) for port in ports)


def test_taken_s3_port_fails_fast(weed_server: WeedServer, tmp_path: Path) -> None:
    with pytest.raises(WeedStartError, match="already taken"):
        start_weed(tmp_path, weed_server.ports.s3)


def test_weed_that_exits_fails_with_its_log_tail(tmp_path: Path, bound_not_listening: int) -> None:
    with pytest.raises(WeedStartError, match="exited") as info:
        start_weed(tmp_path, bound_not_listening, ready_timeout=10)
    assert str(bound_not_listening) in str(info.value).split("log ", 1)[1]


def test_stop_ends_the_process_and_frees_the_port(tmp_path: Path) -> None:
    server = start_weed(tmp_path)
    assert port_answers(server.ports.s3)
    server.stop()
    assert server.process.returncode is not None
    assert not port_answers(server.ports.s3)
    # Its own sockets by name and port: another weed's leftover may carry one of these port numbers.
    own = [Path(f"/tmp/seaweedfs-{name}-grpc-{getattr(server.ports, f'{name}_grpc')}.sock") for name in GRPC]
    assert not [p for p in own if p.exists()]
    server.stop()  # a second stop is harmless


def test_cli_starts_detached_once_and_stops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (port,) = free_ports(1)
    try:
        assert main(["--dir", str(tmp_path), "--port", str(port)]) == 0
        pid = int((tmp_path / PID_FILE).read_text())
        assert port_answers(port)
        assert (tmp_path / "weed.log").exists()

        assert main(["--dir", str(tmp_path), "--port", str(port)]) == 0
        assert "already answers" in capsys.readouterr().out
        assert int((tmp_path / PID_FILE).read_text()) == pid
    finally:
        stopped = stop_detached(tmp_path)
    assert stopped
    assert not port_answers(port)
    assert not (tmp_path / PID_FILE).exists()
    assert main(["--dir", str(tmp_path), "--stop"]) == 0
    assert "not running" in capsys.readouterr().out
