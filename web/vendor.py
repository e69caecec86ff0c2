"""Front-end libraries served from ``node_modules`` (installed by ``npm ci`` from the pinned package-lock.json).

Only the files listed here are served: no directory listing, no other package. No CDN:
the pages work on a network that reaches nothing but this server.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, abort, current_app, request, send_file, url_for

from engine.paths import PROJECT_ROOT

bp = Blueprint("vendor", __name__, url_prefix="/vendor")

# URL name -> file under node_modules.
FILES = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "bpmn-navigated-viewer.js": "bpmn-js/dist/bpmn-navigated-viewer.production.min.js",
    "bpmn-modeler.js": "bpmn-js/dist/bpmn-modeler.production.min.js",
    "diagram-js.css": "bpmn-js/dist/assets/diagram-js.css",
    "bpmn-js.css": "bpmn-js/dist/assets/bpmn-js.css",
    "bpmn-embedded.css": "bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css",
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
}
# The packages of those files, whose versions go in the URLs (a new version is a new URL: long caching is safe).
PACKAGES = {"htmx.min.js": "htmx.org", "chart.umd.min.js": "chart.js"}


def node_modules() -> Path:
    return Path(current_app.config.get("SPIE_NODE_MODULES") or PROJECT_ROOT / "node_modules")


@lru_cache(maxsize=32)
def package_version(root: str, package: str) -> str:
    try:
        return json.loads((Path(root) / package / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return "0"


def version_of(name: str) -> str:
    return package_version(str(node_modules()), PACKAGES.get(name) or FILES[name].split("/", 1)[0])


@bp.get("/<name>")
def asset(name: str):
    relative = FILES.get(name)
    if relative is None:
        abort(404)
    path = node_modules() / relative
    if not path.is_file():
        current_app.logger.error("%s is missing: run `npm ci` in the project folder", path)
        abort(404)
    return send_file(path, max_age=365 * 24 * 3600 if request.args.get("v") else 3600)


@bp.app_template_global("vendor_url")
def vendor_url(name: str) -> str:
    """The URL of a vendored file, with its package's version (templates: ``vendor_url("htmx.min.js")``)."""
    return url_for("web.vendor.asset", name=name, v=version_of(name))
