"""The SPIE pathways engine: domain and runtime, independent of Flask.

Everything here takes a SQLAlchemy session and an :class:`~engine.context.EngineContext`;
the web layer (``api/``) only binds them to HTTP.
"""
