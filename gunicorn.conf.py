"""gunicorn settings read from the project folder: `gunicorn 'api.app:create_app()'` (docs/operations.md)."""
from engine.gc_policy import tune_for_service


def post_worker_init(worker) -> None:
    """Each worker, its app loaded: the garbage collector settings of engine.gc_policy."""
    tune_for_service()
