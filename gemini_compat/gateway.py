"""The HTTP edge: a Flask request in, a Flask response out. Everything else is called from here."""

import flask

from . import auth, catalogue, request_body, routing, storage, streaming, thinking
from .caches import CachedContents
from .embeddings import embedding_batches, embedding_vectors
from .errors import GeminiError, InvalidArgument, PermissionDenied
from .files import Files
from .json_wire import JSON_CONTENT_TYPE, dumps
from .logs import RequestLog, internal_error
from .owners import Owners
from .request_translation import chat_request, count_tokens_request, counted_tokens
from .response_translation import StreamTranslator, gemini_response, merged_response
from .responses import json_response
from .uploads import UploadRecords, Uploads
from .upstream import Upstream
from .validation import BATCH_EMBED_CONTENTS, COUNT_TOKENS, EMBED_CONTENT, GENERATE_CONTENT

CORS_ALLOWED_HEADERS = ("authorization, content-type, x-goog-api-key, x-goog-api-client, x-server-timeout, "
                        "x-goog-upload-protocol, x-goog-upload-command, x-goog-upload-offset, "
                        "x-goog-upload-header-content-length, x-goog-upload-header-content-type, x-goog-upload-file-name")
# What a page's script may read of an answer: the upload's URL and state (uploads.py), besides Retry-After.
CORS_EXPOSED_HEADERS = ("Retry-After, X-Goog-Upload-URL, X-Goog-Upload-Status, X-Goog-Upload-Size-Received, "
                        "X-Goog-Upload-Chunk-Granularity")


class Gateway:
    """One per process: the settings and the upstream connection pool, shared by all requests."""

    def __init__(self, settings):
        self.settings = settings
        self.upstream = Upstream(settings)
        self.request_memory = request_body.MemoryBudget(settings.request_memory_bytes)
        request_body.give_freed_memory_back()
        store = storage.open_store(settings)
        upload_records = UploadRecords(store)
        self.owners = Owners(settings, store, self.upstream, upload_records)
        self.files = Files(settings, store, self.request_memory)
        self.uploads = Uploads(settings, store, upload_records, self.files, self.owners, self.request_memory)
        self.caches = CachedContents(settings, store, self.files, self.owners, self.upstream, self.request_memory)

    def handle(self, request):
        log = RequestLog(request, self.settings.gcp_project)
        try:
            response, error = self._respond(request, log), None
        except Exception as failure:  # any failure is a Gemini error, never an HTML page or a traceback
            error = _gemini_error(failure, log)
            response = error_response(error)
        finally:
            request_body.release(request.environ)  # a stream has its first chunk: the request is translated
        return self._sent(request, response, log, error)

    def framework_error(self, request, error):
        """An error the framework raises before the function runs (/favicon.ico, /robots.txt, a path
        its URL rules do not take, e.g. one holding a newline), in the envelope and logged."""
        failure = GeminiError(error.description or error.name, code=error.code or 500)
        return self._sent(request, error_response(failure), RequestLog(request, self.settings.gcp_project), failure)

    def _sent(self, request, response, log, error=None):
        """The response as it leaves: CORS headers, the connection closed if the body was not read,
        the log line, with the ``error`` it answers (a stream that started writes its own, at its end)."""
        if self.settings.cors_origins:
            _add_cors_headers(response, request, self.settings.cors_origins)
        if not response.is_streamed or response.status_code != 200:
            log.write(response.status_code, error)
        if request_body.BODY_READ not in request.environ and request_body.has_body(request):
            response = request_body.answered_unread(response, request.environ)
        return response

    def _respond(self, request, log):
        if request.method == "OPTIONS" and self.settings.cors_origins:
            return preflight_response(request, self.settings.cors_origins)
        route = routing.parse_route(routing.raw_path(request.environ), request.method)
        if route.action == "uploadFile" and "upload_id" in request.args:
            return self.uploads.chunk(request, route, log)  # the upload URL is the credential: no key
        log.fields["model"] = route.model
        caller = auth.caller(self.settings, request.headers, request.args)
        if caller.name:
            log.fields["caller"] = caller.name
        if route.action == "uploadFile":
            return self.uploads.start(request, route, caller, log)
        if route.collection == "files":
            return self.files.respond(request, route, caller, log)
        if route.collection == "cachedContents":
            return self.caches.respond(request, route, caller, log)
        key = caller.key
        if route.action == "listModels":
            page_size, offset = catalogue.page_query(request.args)
            return json_response(catalogue.page(self.models(key, catalogue.gemini_models), page_size, offset))
        if route.action == "getModel":
            return json_response(self.models(key, catalogue.find_model, route))
        model = log.fields["upstreamModel"] = catalogue.upstream_model(self.settings, route)
        request_body.check_content_type(request.headers)
        body = request_body.read_json(request, self.settings.max_request_bytes, self.settings.client_body_timeout,
                                      self.request_memory)
        if route.action == "countTokens":
            body = self.caches.counted_request(COUNT_TOKENS.validate(body), route, caller, request.environ)
            return json_response(self.count_tokens(model, key, self.files.resolved(body, caller, request.environ)))
        if route.action == "embedContent":
            answer = self.embed(route, model, key, [EMBED_CONTENT.validate(body)], base_path=None)
            return json_response({"embedding": answer[0]})
        if route.action == "batchEmbedContents":
            requests = BATCH_EMBED_CONTENTS.validate(body)["requests"]
            return json_response({"embeddings": self.embed(route, model, key, requests, base_path=["requests"])})
        body = self.caches.materialized(GENERATE_CONTENT.validate(body), route, caller, request.environ)
        body = self.files.resolved(body, caller, request.environ)
        if route.action == "streamGenerateContent":
            return self.stream(model, key, body, request.args.get("alt") == "sse", log)
        return self.generate(model, key, body, log)

    def generate(self, model, key, body, log):
        dialect = self.thinking_dialect(model)
        payload, options = chat_request(body, model, stream=False, thinking_dialect=dialect)
        body.clear()  # translated: its media (up to MAX_REQUEST_BYTES) need not stay while the payload is sent
        if thinking.answers_only_streamed(dialect, model, payload):
            response = self.assembled(payload, options, key)
        else:
            completion = self.upstream.post_json("/chat/completions", payload, key)
            response = gemini_response(completion, options)
        log.fields.update(upstreamStatus=200, modelVersion=response["modelVersion"],
                          usage=response.get("usageMetadata", {}))
        return json_response(response)

    def assembled(self, payload, options, key):
        """One answer, from the upstream's stream of it."""
        streamed = {**payload, "stream": True, "stream_options": {"include_usage": True}}
        limit = self.settings.max_upstream_response_bytes
        return self.upstream.read_stream(
            streamed, key, lambda stream: merged_response(self.stream_translator(options, payload).chunks(stream), limit))

    def stream_translator(self, options, payload):
        return StreamTranslator(options, payload.get("n", 1), self.settings.max_upstream_response_bytes,
                                preopened_think=self.settings.think_tags == "preopened")

    def thinking_dialect(self, model):
        return thinking.dialect_for(model, self.settings.thinking_rules, self.settings.upstream_thinking)

    def count_tokens(self, model, key, body):
        """Counted by the upstream itself (see ``count_tokens_request``); with a cache, its own count
        too (``caches.counted_request``)."""
        payload = count_tokens_request(body, model, self.thinking_dialect(model))
        answer = {"totalTokens": counted_tokens(self.upstream.post_json("/chat/completions", payload, key))}
        if "cachedContentTokenCount" in body:
            answer["cachedContentTokenCount"] = body["cachedContentTokenCount"]
        return answer

    def embed(self, route, model, key, requests, base_path):
        vectors = [None] * len(requests)
        for positions, payload in embedding_batches(requests, route.model, model, base_path):
            answer = self.upstream.post_json("/embeddings", payload, key)
            vectors_of_batch = embedding_vectors(answer, len(positions), payload.get("dimensions"))
            for position, values in zip(positions, vectors_of_batch, strict=True):
                vectors[position] = {"values": values}
        return vectors

    def models(self, key, translate, *args):
        """The upstream's model list, translated by ``translate`` (the Gemini list, or one model)."""
        upstream_list = self.upstream.get_json("/models", key)
        return translate(self.settings, upstream_list, *args)

    def stream(self, model, key, body, sse, log):
        payload, options = chat_request(body, model, stream=True, thinking_dialect=self.thinking_dialect(model))
        body.clear()  # as in generate

        def start():  # retried until the stream's first bytes: nothing has reached the client before them
            translator = self.stream_translator(options, payload)
            return stream_body(self.upstream.open_stream(payload, key), translator, sse, log)

        return streaming.response(self.upstream.with_retries(start), sse)


def error_response(error):
    return flask.Response(dumps(error.body()), error.code, headers=error.headers, content_type=JSON_CONTENT_TYPE)


def _gemini_error(failure, log):
    """The Gemini error that answers an exception raised while responding (called in its ``except``)."""
    if isinstance(failure, GeminiError):
        if failure.from_upstream:
            log.fields["upstreamStatus"] = failure.code
        return failure
    if isinstance(failure, RecursionError):  # the client's body (the upstream's is checked where parsed)
        return InvalidArgument("Invalid JSON payload received. The body is nested too deeply.")
    return internal_error("unexpected error")  # a bug of ours, logged with its traceback


def preflight_response(request, origins):
    if _allowed_origin(request, origins) is None:
        raise PermissionDenied("This origin is not allowed by CORS_ORIGINS.")
    return flask.Response(b"", 204, headers={
        "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers") or CORS_ALLOWED_HEADERS,
        "Access-Control-Max-Age": "3600",
    })


def _allowed_origin(request, origins):
    origin = request.headers.get("Origin", "").rstrip("/")
    if not origin:
        return None
    return origin if origin in origins or "*" in origins else None


def _add_cors_headers(response, request, origins):
    origin = _allowed_origin(request, origins)
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS


def stream_body(stream, translator, sse, log):
    """The client's bytes for an upstream ``EventStream``, run up to the first (``streaming.started``):
    its chunks translated, framed, and the request logged at the stream's end."""

    def ended(status, failure):
        log.fields.update(upstreamStatus=200, stream=True, modelVersion=translator.model or translator.options.model,
                          usage=translator.usage or {})
        log.write(status, failure)

    return streaming.started(translator.chunks(stream), sse, stream.close, ended)
