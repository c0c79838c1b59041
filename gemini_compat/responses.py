"""The JSON answers of every route: a value as a 200 response (errors: ``gateway.error_response``)."""

import flask

from .json_wire import JSON_CONTENT_TYPE, dumps


def json_response(value, headers=None):
    return flask.Response(dumps(value), 200, headers=headers, content_type=JSON_CONTENT_TYPE)
