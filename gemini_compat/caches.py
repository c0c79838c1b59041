"""cachedContents over our own store: create/get/list/patch/delete, and a request that names one
made whole (the cache's system instruction, tools and contents, then the request's).

A cache is one object, ``cachedContents/{owner}/{id}``: its body the resource's immutable fields as
Gemini JSON (model, displayName, createTime, contents, systemInstruction, tools, toolConfig), its
metadata what get and list answer (the output view's times and token count), so that neither reads
a body and an update of the expiration rewrites only metadata. Each of our files the cache names is
copied to ``cacheFiles/{owner}/{id}/{file_id}`` and named ``cacheFiles/{id}/{file_id}`` in the
stored parts: the cache outlives the file, as Google's does.

The upstream gets the cache's messages translated afresh on every use; translation is deterministic,
so it receives the same bytes every time, and its own prefix cache does what Google's cache does.
"""

import datetime
import json
import re
import time

from . import catalogue, clock, config, request_body, thinking
from .errors import InvalidArgument, PermissionDenied
from .files import file_data_parts, file_permission_denied, file_uri_id, generated_id, rfc3339
from .json_wire import JSON_CONTENT_TYPE, dumps
from .request_translation import count_tokens_request, counted_tokens
from .responses import json_response
from .routing import RESOURCE_ID, Route, check_model_id
from .storage import every_object
from .validation import CACHED_CONTENT, CACHED_CONTENT_UPDATE

INPUT_FIELDS = ("contents", "systemInstruction", "tools", "toolConfig")
# What Google refuses next to cachedContent in a generateContent request (they are the cache's).
CACHED_FIELDS = ("systemInstruction", "tools", "toolConfig")
NOT_WITH_CACHE = ("CachedContent can not be used with GenerateContent request setting system_instruction, tools or "
                  "tool_config. Proposed fix: move those values to CachedContent from GenerateContent request.")
UPDATABLE = ("ttl", "expireTime", "expire_time")
_NAME = re.compile(r"cachedContents/(?P<id>.+)")


def permission_denied(cache_id):
    """Google's answer for a cache that is absent, expired or another owner's: it does not tell which."""
    return PermissionDenied(f"You do not have permission to access the CachedContent {cache_id} or it may not exist.")


class CachedContents:
    def __init__(self, settings, store, files, owners, upstream, request_memory):
        self.settings = settings
        self.store = store
        self.files = files
        self.owners = owners
        self.upstream = upstream
        self.request_memory = request_memory

    # --- the routes ---------------------------------------------------------------------------

    def respond(self, request, route, caller, log):
        self.files.require_store()
        if route.resource_id:
            log.fields["cachedContent"] = route.resource_id
        if route.action == "createCachedContent":
            return json_response(self.create(self._body(request), route, caller, request.environ, log))
        if route.action == "listCachedContents":
            return json_response(self.list(caller.owner, request.args))
        if route.action == "getCachedContent":
            return json_response(output_view(self._head(caller.owner, route.resource_id)))
        if route.action == "updateCachedContent":
            mask = request.args.get("updateMask") or request.args.get("update_mask")
            return json_response(self.update(caller.owner, route.resource_id, self._body(request), mask))
        self.delete(caller.owner, route.resource_id)
        return json_response({})

    def _body(self, request):
        request_body.check_content_type(request.headers)
        return request_body.read_json(request, self.settings.max_request_bytes, self.settings.client_body_timeout,
                                      self.request_memory)

    def create(self, body, route, caller, environ, log):
        """The stored cache's output view, for a CachedContent resource as the SDK sends it."""
        body = CACHED_CONTENT.validate(body)
        model_id = log.fields["model"] = body["model"].removeprefix("models/")
        check_model_id(model_id)
        model = log.fields["upstreamModel"] = catalogue.upstream_model(
            self.settings, Route(route.version, model_id, route.action))
        now = clock.now()
        expires = self._expiry(body, now, latest=now + self.settings.cache_max_ttl)
        cache_id = generated_id()
        file_ids = our_file_ids(body)
        record = {"model": body["model"], **_present(body, "displayName"), "createTime": rfc3339(now),
                  **{name: value for name, value in rewritten(body, cache_id).items() if name in INPUT_FIELDS}}
        data = dumps(record)  # its size counts in the quota
        sizes = [self.files.stored_file(caller.owner, file_id).size for file_id in file_ids]
        self.owners.check_quota(caller.owner, len(data) + sum(sizes), 1 + len(file_ids))
        tokens = self._counted(body, model, caller, environ)
        minimum = self.settings.cache_min_tokens
        if tokens is not None and tokens < minimum:
            raise InvalidArgument(f"Cached content is too small. total_token_count={tokens}, "
                                  f"min_total_token_count={minimum}")
        metadata = {"model": body["model"], **_present(body, "displayName"), "createTime": record["createTime"],
                    "updateTime": record["createTime"], "expireTime": rfc3339(expires)}
        if tokens is not None:
            metadata["totalTokenCount"] = str(tokens)
        try:
            for file_id in file_ids:
                copied = self.store.copy(f"files/{caller.owner}/{file_id}", cache_file_name(caller.owner, cache_id, file_id))
                if copied is None:  # deleted since it was counted
                    raise file_permission_denied(file_id)
            stored = self.store.put(record_name(caller.owner, cache_id), data, JSON_CONTENT_TYPE, metadata,
                                    if_absent=True)
        except BaseException:
            self._delete_files(caller.owner, cache_id)
            raise
        log.fields["cachedContent"] = cache_id
        return output_view(stored)

    def list(self, owner, args):
        """One page of the owner's caches: ``{"cachedContents": [...], "nextPageToken": ...}``, each
        key left out when empty (proto3 JSON, as Google answers: no caches is ``{}``)."""
        # pageSize as for models (50 by default, larger than 1000 coerced to it); the token is the store's.
        size, _ = catalogue.page_query({name: args[name] for name in ("pageSize", "page_size") if name in args})
        token = args.get("pageToken") or args.get("page_token") or None
        found, next_token = self.store.list(f"cachedContents/{owner}/", size, token)
        now = clock.now()
        views = [output_view(stored) for stored in found if not self._expired(stored, now)]
        answer = {"cachedContents": views} if views else {}
        if next_token:
            answer["nextPageToken"] = next_token
        return answer

    def update(self, owner, cache_id, body, mask):
        """The cache with a new expiration (``{"ttl": "600s"}`` or ``{"expireTime": ...}``)."""
        for field in [*(body if isinstance(body, dict) else ()), *(mask.split(",") if mask else ())]:
            if field.strip() not in UPDATABLE:
                raise InvalidArgument("only expiration is updatable", field=field.strip())
        body = CACHED_CONTENT_UPDATE.validate(body)
        stored = self._head(owner, cache_id)
        now = clock.now()
        # Never past CACHE_MAX_TTL from its creation: the bucket's lifecycle rule counts from then.
        latest = parsed_time(stored.metadata["createTime"]) + self.settings.cache_max_ttl
        metadata = {"expireTime": rfc3339(self._expiry(body, now, latest)), "updateTime": rfc3339(now)}
        updated = self.store.set_metadata(stored.name, metadata)
        if updated is None:  # deleted meanwhile
            raise permission_denied(cache_id)
        return output_view(updated)

    def delete(self, owner, cache_id):
        self._head(owner, cache_id)
        self.store.delete(record_name(owner, cache_id))
        self._delete_files(owner, cache_id)

    # --- use ----------------------------------------------------------------------------------

    def materialized(self, body, route, caller, environ):
        """A validated generateContent request; with ``cachedContent``, the whole request it stands for:
        the cache's system instruction, tools and tool config, its contents, then the request's.

        ``{"cachedContent": "cachedContents/abc", "contents": [Q], "generationConfig": G}`` with the
        cache ``{"systemInstruction": S, "contents": [A, B]}``
        -> ``{"systemInstruction": S, "contents": [A, B, Q], "generationConfig": G}``
        """
        if "cachedContent" not in body:
            return body
        return self._merged(body, route, caller, environ, "cachedContent")[0]

    def counted_request(self, body, route, caller, environ):
        """A validated countTokens request, its generateContentRequest's cachedContent made whole;
        with ``cachedContentTokenCount``, the cache's own count, for the answer."""
        request = body.get("generateContentRequest")
        if not request or "cachedContent" not in request:
            return body
        merged, tokens = self._merged(request, route, caller, environ, "generateContentRequest.cachedContent")
        counted = {**body, "generateContentRequest": merged}
        if tokens is not None:
            counted["cachedContentTokenCount"] = tokens
        return counted

    def _merged(self, body, route, caller, environ, field):
        """(the request ``body`` with its cache's fields and contents, the cache's token count or None)."""
        if self.store is None:
            raise InvalidArgument("this deployment has no storage (set STORAGE_BUCKET), so no cached contents",
                                  field=field)
        if any(name in body for name in CACHED_FIELDS):
            raise InvalidArgument(NOT_WITH_CACHE)
        match = _NAME.fullmatch(body["cachedContent"])
        if not match or not RESOURCE_ID.fullmatch(match["id"]):
            raise InvalidArgument("not a cachedContents/{id} name", field=field)
        stored, cache = self._record(caller.owner, match["id"], environ)
        if cache["model"] != f"models/{route.model}":
            raise InvalidArgument(f"Model used by GenerateContent request (models/{route.model}) and CachedContent "
                                  f"({cache['model']}) has to be the same.")
        merged = {name: value for name, value in body.items() if name != "cachedContent"}
        merged.update({name: cache[name] for name in CACHED_FIELDS if name in cache})
        merged["contents"] = cache.get("contents", []) + body["contents"]
        tokens = stored.metadata.get("totalTokenCount")
        return merged, int(tokens) if tokens is not None else None

    # --- the store ----------------------------------------------------------------------------

    def _head(self, owner, cache_id):
        """The cache's StoredObject (metadata only); 403 when absent or expired (then deleted)."""
        stored = self.store.head(record_name(owner, cache_id))
        if stored is None or self._expired(stored, clock.now()):
            raise permission_denied(cache_id)
        return stored

    def _record(self, owner, cache_id, environ):
        """(StoredObject, the stored resource), its memory reserved as a request body's is (in the
        WSGI ``environ``, where the request's reservation lives)."""
        found = self.store.get(record_name(owner, cache_id))
        if found is None or self._expired(found[1], clock.now()):
            raise permission_denied(cache_id)
        data, stored = found
        cost = request_body.json_cost(data)
        if cost > config.BYTE_COST * request_body.SMALL_BODY_BYTES:
            request_body.reserve_more(environ, self.request_memory, cost,
                                      time.monotonic() + self.settings.client_body_timeout)
        return stored, json.loads(data)

    def _expired(self, stored, now):
        """Whether the cache has expired; an expired one is deleted on the way (lazily: no sweeper)."""
        if parsed_time(stored.metadata["expireTime"]) > now:
            return False
        owner, cache_id = stored.name.split("/")[1:]
        self.store.delete(stored.name)
        self._delete_files(owner, cache_id)
        return True

    def _delete_files(self, owner, cache_id):
        for stored in every_object(self.store, f"cacheFiles/{owner}/{cache_id}/"):
            self.store.delete(stored.name)

    # --- create's checks ----------------------------------------------------------------------

    def _expiry(self, body, now, latest):
        """When the cache is to expire, from ``ttl`` or ``expireTime`` (default: in 1 h), at the
        latest ``latest`` (CACHE_MAX_TTL after its creation)."""
        if "ttl" in body:
            expires, field = now + float(body["ttl"][:-1]), "ttl"
        elif "expireTime" in body:
            expires, field = parsed_time(body["expireTime"], "expireTime"), "expireTime"
        else:
            expires, field = min(now + config.DEFAULT_CACHE_TTL, latest), None
        if expires <= now:
            raise InvalidArgument("the expiration must lie in the future", field=field)
        if expires > latest:
            raise InvalidArgument(f"a cache may live at most CACHE_MAX_TTL ({self.settings.cache_max_ttl:g} s) "
                                  "from its creation", field=field)
        return expires

    def _counted(self, body, model, caller, environ):
        """The cache's tokens, counted by the upstream as countTokens counts (None with
        CACHE_TOKEN_COUNT=none). The count's request is built either way: what cannot be translated
        is refused now, as Google refuses it at create, not at first use. Counting proves a
        pass-through key; without it the key is proved with the model list."""
        request = {"contents": [], **{name: body[name] for name in INPUT_FIELDS if name in body}}
        request = self.files.resolved(request, caller, environ)  # our files must be there (403)
        dialect = thinking.dialect_for(model, self.settings.thinking_rules, self.settings.upstream_thinking)
        payload = count_tokens_request({"generateContentRequest": request}, model, dialect)
        if not payload["messages"]:
            raise InvalidArgument("a cache holds contents or a systemInstruction; this one holds neither")
        if self.settings.cache_token_count == "none":
            if caller.unverified:
                self.owners.verify_key(caller)
            return None
        return counted_tokens(self.upstream.post_json("/chat/completions", payload, caller.key))


# --- pure helpers ----------------------------------------------------------------------------

def record_name(owner, cache_id):
    return f"cachedContents/{owner}/{cache_id}"


def cache_file_name(owner, cache_id, file_id):
    return f"cacheFiles/{owner}/{cache_id}/{file_id}"


def output_view(stored):
    """What Google answers for a cache: never its input-only contents, instruction or tools.

    metadata ``{"model": "models/m", "createTime": T, "updateTime": T, "expireTime": E, "totalTokenCount": "9"}``
    -> ``{"name": "cachedContents/{id}", "model": "models/m", "createTime": T, "updateTime": T,
    "expireTime": E, "usageMetadata": {"totalTokenCount": 9}}``
    """
    metadata = stored.metadata
    view = {"name": "cachedContents/" + stored.name.rsplit("/", 1)[1], "model": metadata["model"],
            **_present(metadata, "displayName"),
            **{name: metadata[name] for name in ("createTime", "updateTime", "expireTime")}}
    if "totalTokenCount" in metadata:
        view["usageMetadata"] = {"totalTokenCount": int(metadata["totalTokenCount"])}
    return view


def _present(mapping, name):
    return {name: mapping[name]} if name in mapping else {}


def our_file_ids(body):
    """The IDs of our files the cache's parts name, each once, in order."""
    ids = [file_uri_id(part["fileData"]["fileUri"]) for part, _ in file_data_parts(body)]
    return list(dict.fromkeys(file_id for file_id in ids if file_id))


def rewritten(body, cache_id):
    """``body`` with each fileData naming one of our files renamed to the cache's own copy (new
    dicts and lists on the way to it, the rest shared): ``files/abc`` -> ``cacheFiles/{cache_id}/abc``."""
    def part_rewritten(part):
        if "fileData" in part and (file_id := file_uri_id(part["fileData"]["fileUri"])):
            return {**part, "fileData": {**part["fileData"], "fileUri": f"cacheFiles/{cache_id}/{file_id}"}}
        if "functionResponse" in part and "parts" in part["functionResponse"]:
            response = part["functionResponse"]
            return {**part, "functionResponse": {**response, "parts": [part_rewritten(p) for p in response["parts"]]}}
        return part

    if "contents" not in body:
        return body
    contents = [{**content, "parts": [part_rewritten(part) for part in content["parts"]]} for content in body["contents"]]
    return {**body, "contents": contents}


def parsed_time(text, field=None):
    """Seconds since the epoch for an RFC 3339 time with its offset (the schema checked its shape)."""
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:  # a shape that names no date: February 30th
        raise InvalidArgument(f"{text!r} is not a valid time", field=field) from None

