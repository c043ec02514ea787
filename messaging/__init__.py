"""Broker I/O shared by the edge and the workers; imports only `contracts` of ours."""

from messaging.broker import declare, publish_event, publish_live

__all__ = ["declare", "publish_event", "publish_live"]
