"""Gemini API requests in, an OpenAI-compatible upstream behind: the Cloud Functions entry point."""

import functions_framework
from werkzeug.exceptions import HTTPException

from gemini_compat.config import Settings
from gemini_compat.handler import Gateway, framework_error_response

gateway = Gateway(Settings.from_env())


@functions_framework.http
def gemini(request):
    return gateway.handle(request)


@functions_framework.errorhandler(HTTPException)
def framework_error(error):
    return framework_error_response(error)
