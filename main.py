"""Gemini API requests in, an OpenAI-compatible upstream behind: the Cloud Functions entry point."""

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from gemini_compat.config import Settings
from gemini_compat.gateway import Gateway

gateway = Gateway(Settings.from_env())


@functions_framework.http
def gemini(request):
    return gateway.handle(request)


@functions_framework.errorhandler(HTTPException)
def framework_error(error):
    return gateway.framework_error(flask.request, error)
