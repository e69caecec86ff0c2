"""Flask extensions, created unbound and bound in the app factory."""
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from engine.db import Base

db = SQLAlchemy(model_class=Base)
api = Api()
