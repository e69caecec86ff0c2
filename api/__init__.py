"""The Flask side: app factory, CLI, and (later) the REST API."""
from api.app import create_app as create_app
