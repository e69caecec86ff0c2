"""REST API v1: one blueprint per resource, registered on the flask-smorest ``Api``."""
from flask_smorest import Api

from api.v1 import audit, auth, cases, pathways, simulation, structures, supervision, tasks, users


def register(api: Api) -> None:
    for module in (auth, users, structures, pathways, cases, tasks, supervision, simulation, audit):
        api.register_blueprint(module.bp)
