"""Where the edge's log consumer resumes after a reconnection: never past an event it has not folded."""

from __future__ import annotations

import asyncio

from contracts.topology import Topology
from edge.bus import STREAM_OFFSET, EdgeBus
from edge.projections.store import ProjectionStore


def test_the_resume_offset_is_the_oldest_event_not_yet_folded() -> None:
    bus = EdgeBus("amqp://guest:guest@127.0.0.1:1/", Topology("t"), "edge-t", ProjectionStore())
    assert bus.log_offset == "first"
    bus._folding |= {7, 5}  # delivered, still being folded (or cancelled with the connection)
    bus._folded_up_to = 6
    assert bus._resume_offset() == 5
    bus._folding.clear()
    assert bus._resume_offset() == 7


def test_folding_moves_the_offset_in_the_dict_aio_pika_re_subscribes_with() -> None:
    bus = EdgeBus("amqp://guest:guest@127.0.0.1:1/", Topology("t"), "edge-t", ProjectionStore())
    consume_args = bus._log_args  # the very dict handed to the subscriber

    class Raw:
        def __init__(self, offset: int) -> None:
            self.headers = {STREAM_OFFSET: offset}

    class Message:
        def __init__(self, offset: int) -> None:
            self.body = b"{}"  # unreadable as an event: skipped, but its offset is still folded
            self.raw_message = Raw(offset)

    [fold_log] = [s for s in bus.broker.subscribers if s.queue.name == "t.log"]
    # FastStream passes this dict itself to aio-pika, which keeps it to re-subscribe (not a copy).
    assert fold_log.consume_args is consume_args
    call = fold_log.calls[0].handler._original_call
    for offset in (3, 4):
        asyncio.run(call(Message(offset)))
    assert consume_args[STREAM_OFFSET] == 5 and bus.log_offset == 5
