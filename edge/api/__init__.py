"""All routes, grouped as Fooocus-API exposes them."""

from sanic import Blueprint

from edge.api import docs, engines, files, generation, images, jobs, tools

routes = Blueprint.group(
    generation.bp, images.v1, images.v2, jobs.bp, engines.bp, tools.bp, files.bp, docs.bp
)
