"""All routes, grouped as Fooocus-API exposes them."""

from sanic import Blueprint

from edge.api import files, generation, jobs

routes = Blueprint.group(generation.bp, jobs.bp, files.bp)
