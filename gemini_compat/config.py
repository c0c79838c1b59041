"""Configuration, read from the environment once when the function starts.

A bad value stops the function at start with a message naming the variable: a misconfigured
endpoint must fail its deploy, not answer wrongly. deploy.sh checks a deploy's settings with this
module before it builds anything, so it imports the standard library only (no package to install).
"""

import dataclasses
import hashlib
import math
import os
import re
import typing

from .model_patterns import ModelRule
from .routing import is_model_id
from .thinking import DIALECTS

DEFAULT_UPSTREAM_BASE_URL = "https://nexusflow.vip/v1"
DEFAULT_UPSTREAM_TIMEOUT = 120.0
DEFAULT_UPSTREAM_RETRIES = 2
# Gemini's limit for a request with inline data is 20 MB.
DEFAULT_MAX_REQUEST_BYTES = 20 * 1024 * 1024
# Seconds a client has to send its whole request body: a client that goes quiet must not hold a thread.
DEFAULT_CLIENT_BODY_TIMEOUT = 60.0
# Memory all requests' bodies may take at once, in their parsed and translated forms too (see
# request_body.MemoryBudget), unless MAX_REQUEST_BYTES needs more: with the worker's own ~160 MB,
# it fits a 512 MiB instance.
DEFAULT_REQUEST_MEMORY_BYTES = 256 * 1024 * 1024
# The most the function reads of one upstream answer (after decompression), of one stream event,
# and of one streamed tool call's arguments: an upstream must not grow memory without bound.
DEFAULT_MAX_UPSTREAM_RESPONSE_BYTES = 16 * 1024 * 1024
# What a request is reckoned to cost in memory while it is served, for the budget: a 20 MiB image
# peaks at about three times its size (the bytes or the text, the parsed string, the data URL, the
# upstream request's JSON and its bytes, not all at once; bench/reliability.py measures it), five
# leaves room. request_body.MemoryBudget counts by it; REQUEST_MEMORY_BYTES must hold one request.
BYTE_COST = 5
# Files and cached contents (uploads.py, files.py, caches.py, owners.py), Google's own limits where
# it has them: a file is kept 48 h and holds up to 2 GB; a project stores up to 20 GB; a cache lives
# 1 h unless told.
DEFAULT_FILE_TTL = 48 * 3600.0
DEFAULT_FILE_MAX_BYTES = 2 * 1024 ** 3
DEFAULT_STORAGE_QUOTA_BYTES = 20 * 1024 ** 3
# Files, caches and unfinished uploads one owner may hold: listing them is what a quota check costs.
DEFAULT_STORAGE_QUOTA_OBJECTS = 10_000
DEFAULT_CACHE_TTL = 3600.0
DEFAULT_CACHE_MAX_TTL = 30 * 24 * 3600.0
# Where files are kept off Cloud Run when neither STORAGE_BUCKET nor STORAGE_DIR says.
DEFAULT_STORAGE_DIR_NAME = "gemini-compat-store"

_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")
_CALLER_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


class ConfigError(ValueError):
    """A setting has a value the function cannot start with; ``variable`` names it."""

    def __init__(self, variable, message):
        super().__init__(message)
        self.variable = variable


@dataclasses.dataclass(frozen=True)
class Settings:
    upstream_base_url: str = DEFAULT_UPSTREAM_BASE_URL
    # Seconds for connecting and for each read: a stream may last minutes, but never a silent minute.
    upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT
    upstream_retries: int = DEFAULT_UPSTREAM_RETRIES
    # Team mode: the function's own upstream key; callers then present one of the access keys.
    upstream_api_key: str = ""
    access_keys: tuple = ()  # of AccessKey
    allow_unauthenticated: bool = False
    model_aliases: tuple = ()  # of ModelRule, in the order given: the first that matches wins
    allowed_models: frozenset = frozenset()
    cors_origins: tuple = ()
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    client_body_timeout: float = DEFAULT_CLIENT_BODY_TIMEOUT
    request_memory_bytes: int = DEFAULT_REQUEST_MEMORY_BYTES
    max_upstream_response_bytes: int = DEFAULT_MAX_UPSTREAM_RESPONSE_BYTES
    # How the upstream takes thinkingConfig (thinking.DIALECTS), and per-model overrides (ModelRules).
    upstream_thinking: str = "auto"
    thinking_rules: tuple = ()
    # <think> blocks in content: "leading" (only at the start), or "preopened" (the model's template
    # opens the block in the prompt, so a stream's start is held until </think>, at most 64 KiB).
    think_tags: str = "leading"
    gcp_project: str = ""
    # Files and cached contents: where they are kept (a gs:// bucket, or a folder; neither: the
    # routes answer 501), whose they are ("key": each access or upstream key its own; "team": one
    # owner for the deployment, as a Google project), and the limits.
    storage_bucket: str = ""  # "bucket" or "bucket/prefix", from gs://bucket[/prefix]
    storage_dir: str = ""
    public_base_url: str = ""  # the function's URL as clients reach it, for upload URLs and file URIs
    service_name: str = ""  # K_SERVICE, set by Cloud Run and Cloud Functions (2nd gen): the function's name
    files_scope: str = "key"
    file_ttl: float = DEFAULT_FILE_TTL
    file_max_bytes: int = DEFAULT_FILE_MAX_BYTES
    storage_quota_bytes: int = DEFAULT_STORAGE_QUOTA_BYTES
    storage_quota_objects: int = DEFAULT_STORAGE_QUOTA_OBJECTS
    # Bytes of stored files one generate request may send upstream (resolved fileData), in all.
    max_resolved_file_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    cache_max_ttl: float = DEFAULT_CACHE_MAX_TTL
    # Google refuses caches under a floor of tokens (1,024 to 4,096 by model); 0: no floor.
    cache_min_tokens: int = 0
    # "upstream": a cache's tokens are counted by the upstream when it is created (which also warms
    # the upstream's own prefix cache); "none": not counted, and no usageMetadata.
    cache_token_count: str = "upstream"
    # functions-framework's gunicorn threads (its own default: 4 per core): the pool's size too.
    threads: int = 4 * (os.cpu_count() or 1)

    @property
    def team_mode(self):
        return bool(self.upstream_api_key)

    @classmethod
    def from_env(cls, environ=None):
        env = os.environ if environ is None else environ
        base_url = _text(env, "UPSTREAM_BASE_URL") or DEFAULT_UPSTREAM_BASE_URL
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError("UPSTREAM_BASE_URL", f"UPSTREAM_BASE_URL must be an http(s) URL, got {base_url!r}")
        upstream_api_key = _text(env, "UPSTREAM_API_KEY")
        access_keys = _list(env, "ACCESS_KEYS")
        if access_keys and not upstream_api_key:
            raise ConfigError("ACCESS_KEYS",
                              "ACCESS_KEYS needs UPSTREAM_API_KEY: without it callers' keys go upstream as they are")
        max_request_bytes = _number(env, "MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES, int, minimum=1)
        request_memory_bytes = _number(env, "REQUEST_MEMORY_BYTES",
                                       max(DEFAULT_REQUEST_MEMORY_BYTES, BYTE_COST * max_request_bytes), int, minimum=1)
        if request_memory_bytes < BYTE_COST * max_request_bytes:
            raise ConfigError(
                "REQUEST_MEMORY_BYTES",
                f"REQUEST_MEMORY_BYTES ({request_memory_bytes}) must be at least {BYTE_COST} x MAX_REQUEST_BYTES "
                f"({BYTE_COST * max_request_bytes}): a request of the largest size must fit"
            )
        return cls(
            upstream_base_url=base_url.rstrip("/"),
            upstream_timeout=_number(env, "UPSTREAM_TIMEOUT", DEFAULT_UPSTREAM_TIMEOUT, float, minimum=0.001),
            upstream_retries=_number(env, "UPSTREAM_RETRIES", DEFAULT_UPSTREAM_RETRIES, int, minimum=0),
            upstream_api_key=upstream_api_key,
            access_keys=tuple(access_key(entry) for entry in access_keys),
            allow_unauthenticated=_flag(env, "ALLOW_UNAUTHENTICATED"),
            model_aliases=_model_rules(env, "MODEL_ALIASES", "name=model-id or pattern=model-id (gemini-*=qwen-turbo)",
                                       lambda value: value if is_model_id(value) else None),
            allowed_models=frozenset(_list(env, "ALLOWED_MODELS")),
            cors_origins=tuple(origin.rstrip("/") for origin in _list(env, "CORS_ORIGINS")),
            max_request_bytes=max_request_bytes,
            request_memory_bytes=request_memory_bytes,
            client_body_timeout=_number(env, "CLIENT_BODY_TIMEOUT", DEFAULT_CLIENT_BODY_TIMEOUT, float,
                                        minimum=0.001),
            max_upstream_response_bytes=_number(env, "MAX_UPSTREAM_RESPONSE_BYTES",
                                                DEFAULT_MAX_UPSTREAM_RESPONSE_BYTES, int, minimum=1024),
            upstream_thinking=_choice("UPSTREAM_THINKING",
                                      _text(env, "UPSTREAM_THINKING").lower() or cls.upstream_thinking, DIALECTS),
            think_tags=_choice("THINK_TAGS", _text(env, "THINK_TAGS").lower() or cls.think_tags,
                               ("leading", "preopened")),
            thinking_rules=_model_rules(env, "THINKING_RULES", "model=dialect or pattern=dialect (qwen3-*=vllm)",
                                        lambda value: _choice("THINKING_RULES", value.lower(), DIALECTS)),
            gcp_project=_text(env, "GOOGLE_CLOUD_PROJECT") or _text(env, "GCP_PROJECT"),
            threads=_number(env, "THREADS", cls.threads, int, minimum=1),
            **_storage_settings(env, max_request_bytes),
        )


class AccessKey(typing.NamedTuple):
    digest: bytes  # SHA-256 of the key
    caller: str  # who it is, for the log: the entry's name, or the digest's first 8 hex digits


def _storage_settings(env, max_request_bytes):
    """The files and cached contents settings. Off Cloud Run (no K_SERVICE) files are kept in a
    folder by default; on Cloud Run only where STORAGE_BUCKET or STORAGE_DIR (a mounted volume)
    says: an instance's own disk is its memory, and another instance would not find the file."""
    bucket = _text(env, "STORAGE_BUCKET")
    if bucket:
        name = bucket.removeprefix("gs://").strip("/")
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9](/[^\s]*)?", name):
            raise ConfigError("STORAGE_BUCKET", f"STORAGE_BUCKET must be gs://bucket or gs://bucket/prefix, got {bucket!r}")
        bucket = name
    storage_dir = _text(env, "STORAGE_DIR")
    if bucket and storage_dir:
        raise ConfigError("STORAGE_DIR", "STORAGE_DIR and STORAGE_BUCKET are two places for the same files: set one")
    if not bucket and not storage_dir and not _text(env, "K_SERVICE"):
        storage_dir = os.path.join(_text(env, "TMPDIR") or "/tmp", DEFAULT_STORAGE_DIR_NAME)
    public_base_url = _text(env, "PUBLIC_BASE_URL").rstrip("/")
    if public_base_url and not public_base_url.startswith(("http://", "https://")):
        raise ConfigError("PUBLIC_BASE_URL", f"PUBLIC_BASE_URL must be an http(s) URL, got {public_base_url!r}")
    return dict(
        storage_bucket=bucket,
        storage_dir=storage_dir,
        public_base_url=public_base_url,
        service_name=_text(env, "K_SERVICE"),
        files_scope=_choice("FILES_SCOPE", _text(env, "FILES_SCOPE").lower() or "key", ("key", "team")),
        file_ttl=_number(env, "FILE_TTL", DEFAULT_FILE_TTL, float, minimum=1),
        file_max_bytes=_number(env, "FILE_MAX_BYTES", DEFAULT_FILE_MAX_BYTES, int, minimum=1),
        storage_quota_bytes=_number(env, "STORAGE_QUOTA_BYTES", DEFAULT_STORAGE_QUOTA_BYTES, int, minimum=0),
        storage_quota_objects=_number(env, "STORAGE_QUOTA_OBJECTS", DEFAULT_STORAGE_QUOTA_OBJECTS, int, minimum=0),
        max_resolved_file_bytes=_number(env, "MAX_RESOLVED_FILE_BYTES", max_request_bytes, int, minimum=0),
        cache_max_ttl=_number(env, "CACHE_MAX_TTL", DEFAULT_CACHE_MAX_TTL, float, minimum=1),
        cache_min_tokens=_number(env, "CACHE_MIN_TOKENS", 0, int, minimum=0),
        cache_token_count=_choice("CACHE_TOKEN_COUNT", _text(env, "CACHE_TOKEN_COUNT").lower() or "upstream",
                                  ("upstream", "none")),
    )


def access_key(entry):
    """An ACCESS_KEYS entry: ``[name=]key``, where the key is written as itself or as its SHA-256
    digest (64 hex digits, optionally ``sha256:<hex>``). A digest is never accepted as a key, so the
    configuration does not give the keys away.

        "alice=sha256:9f86d0...0f00a08"  ->  AccessKey(digest=bytes.fromhex("9f86d0...0f00a08"), caller="alice")
        "s3cret-key"                     ->  AccessKey(digest=sha256(b"s3cret-key"), caller="<its first 8 hex digits>")
    """
    name, equals, key = entry.partition("=")
    if not equals or not key.strip("="):  # no name: "=" in a key is only its base64 padding
        name, key = "", entry
    elif not _CALLER_NAME.fullmatch(name):
        raise ConfigError("ACCESS_KEYS", f"ACCESS_KEYS names are letters, digits and . _ @ - (at most 64), "
                                         f"before the = of name=key; got {name!r}")
    hex_digest = key[len("sha256:"):] if key.startswith("sha256:") else key
    digest = bytes.fromhex(hex_digest) if _HEX_DIGEST.match(hex_digest) else hashlib.sha256(key.encode()).digest()
    return AccessKey(digest, name or fingerprint(digest))


def fingerprint(digest):
    """Who an unnamed key is, in the log: its SHA-256 digest's first 8 hex digits. They tell keys
    apart and give nothing away; the key and its whole digest are never logged."""
    return digest.hex()[:8]


def _text(env, name):
    return env.get(name, "").strip()


def _list(env, name):
    return [item.strip() for item in _text(env, name).split(",") if item.strip()]


def _flag(env, name):
    value = _text(env, name).lower()
    if value not in ("", "true", "false", "1", "0", "yes", "no"):
        raise ConfigError(name, f"{name} must be true or false, got {value!r}")
    return value in ("true", "1", "yes")


_KIND_NAMES = {int: "a whole number", float: "a number"}


def _number(env, name, default, kind, minimum):
    raw = _text(env, name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(name, f"{name} must be {_KIND_NAMES[kind]}, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(name, f"{name} must be a finite number of at least {minimum}, got {raw!r}")
    return value


def _choice(name, value, choices):
    if value not in choices:
        raise ConfigError(name, f"{name}: {value!r} is not one of {', '.join(choices)}")
    return value


def _model_rules(env, name, form, target):
    """``name``'s comma-separated ``pattern=value`` entries as ModelRules, in order. ``target(value)``
    is the value checked (None when it is none), ``form`` what an entry looks like."""
    rules = []
    for item in _list(env, name):
        pattern, equals, value = (part.strip() for part in item.partition("="))
        value = target(value) if equals else None
        # A pattern is a model ID with '*' in places: checked as one with a letter there.
        if value is None or not is_model_id(pattern.replace("*", "x")):
            raise ConfigError(name, f"{name} entries are {form}, got {item!r}")
        rules.append(ModelRule(pattern, value))
    return tuple(rules)
