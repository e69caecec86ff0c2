"""REST API v1: one blueprint per resource, registered on the flask-smorest ``Api``."""
from flask_smorest import Api

from api.v1 import (audit, auth, cases, offers, pathways, prescriptions, simulation, structures, supervision, tasks,
                    users)


def register(api: Api, *, simulation_mode: bool) -> None:
    """Register the v1 blueprints; the simulation endpoint only exists in simulation mode."""
    modules = [auth, users, structures, pathways, cases, tasks, supervision, audit, offers, prescriptions]
    if simulation_mode:
        modules.append(simulation)
    for module in modules:
        api.register_blueprint(module.bp)
