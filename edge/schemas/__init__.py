"""Fooocus-API's HTTP shapes, kept apart from the fleet's message contracts."""
