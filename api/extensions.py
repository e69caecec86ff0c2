"""Flask extensions, created unbound and bound in the app factory."""
from __future__ import annotations

import http

from flask_smorest import Api
from flask_smorest.utils import prepare_response
from flask_sqlalchemy import SQLAlchemy

from api.schemas import ProblemOut
from engine.db import Base

# A request's session keeps what it read and wrote after a commit, as the engine's sessions do: a
# response built after the command's commit (the case, its tasks) would otherwise reload every object.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

PROBLEM_CONTENT_TYPE = "application/problem+json"


class SpieApi(Api):
    """flask-smorest's Api, with errors documented as they are sent: RFC 9457 ``application/problem+json``."""

    ERROR_SCHEMA = ProblemOut

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Any other error (problem+json)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)
