"""Who may call, and with which key the upstream is called.

Pass-through mode (the default): the caller's own key goes upstream. Team mode (UPSTREAM_API_KEY set):
the function's key goes upstream, and callers prove they belong to the team with an access key; the
caller's key never leaves the function.
"""

import hashlib
import hmac
import re
import typing

from .config import fingerprint
from .errors import PermissionDenied, api_key_invalid

# RFC 6750's b64token: what API keys and bearer tokens are made of. Anything else cannot be a key
# (and must not reach an HTTP header), e.g. a ?key= whose percent-escapes were not UTF-8.
_KEY = re.compile(r"[A-Za-z0-9._~+/-]{1,4096}=*")
# A JSON Web Token: on an IAM-protected service, "Authorization: Bearer" carries the caller's Google
# identity token, which is for Google's front end and must not travel upstream as an API key.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Google OAuth access tokens ("ya29.") and refresh tokens ("1//"): a Google sign-in, never an upstream key.
_GOOGLE_OAUTH_TOKEN = re.compile(r"ya29\.|1//")

MISSING_KEY = (
    "Method doesn't allow unregistered callers. Pass an API key in the x-goog-api-key header, "
    "the key query parameter, or an Authorization: Bearer header (an identity token there is not one)."
)
GOOGLE_CREDENTIAL = (
    "A Google credential (an OAuth token or a JWT) is not an API key for this endpoint's upstream, and is "
    "not forwarded. Pass the upstream's API key in the x-goog-api-key header."
)
NO_ACCESS_KEYS = (
    "This endpoint holds an upstream key but no ACCESS_KEYS, so it refuses every request. "
    "Set ACCESS_KEYS, or ALLOW_UNAUTHENTICATED=true for a service protected by IAM."
)


class Caller(typing.NamedTuple):
    key: str  # the key to call the upstream with
    name: str  # who the caller is, for the log: an access key's name, else its key's fingerprint
    # Whose files and cached contents the caller's are: 32 hex digits of the SHA-256 of the key it
    # presented (an access key, or in pass-through mode its upstream key), or "team" for all callers
    # (FILES_SCOPE=team, or IAM the only gate). A key's digest, never the key, names stored things.
    owner: str
    # In pass-through mode: the key is the caller's own, not yet known to the upstream to be good.
    unverified: bool = False


TEAM_OWNER = "team"


def caller(settings, headers, args):
    """The Caller, once it is let in; raises the Gemini error otherwise. Its name is "" when no key
    was asked for (IAM the only gate)."""
    if not settings.team_mode:
        key = caller_key(headers, args)
        digest = hashlib.sha256(key.encode()).digest()
        return Caller(key, fingerprint(digest), _owner(settings, digest), unverified=True)
    if settings.access_keys:
        found = access_key_caller(caller_key(headers, args), settings.access_keys)
        if found is None:
            raise api_key_invalid()
        return Caller(settings.upstream_api_key, found.caller, _owner(settings, found.digest))
    if settings.allow_unauthenticated:
        return Caller(settings.upstream_api_key, "", TEAM_OWNER)
    raise PermissionDenied(NO_ACCESS_KEYS)


def _owner(settings, digest):
    return TEAM_OWNER if settings.files_scope == "team" else digest.hex()[:32]


def caller_key(headers, args):
    """The key the caller presented: x-goog-api-key (the SDKs), ?key= (curl), or Authorization: Bearer."""
    key = headers.get("x-goog-api-key") or args.get("key") or args.get("$key")
    if not key:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and not _JWT.fullmatch(token.strip()):
            key = token
    key = (key or "").strip()
    if not key:
        # The real API answers a missing key with 403 PERMISSION_DENIED; so do we.
        raise PermissionDenied(MISSING_KEY)
    if _GOOGLE_OAUTH_TOKEN.match(key) or _JWT.fullmatch(key):
        raise PermissionDenied(GOOGLE_CREDENTIAL)
    if not _KEY.fullmatch(key):
        raise api_key_invalid()
    return key


def access_key_caller(key, access_keys):
    """The team's access key (config.AccessKey) ``key`` is, or None when it is none of them;
    compares against every digest, in constant time."""
    presented = hashlib.sha256(key.encode()).digest()
    found = None
    for access_key in access_keys:
        if hmac.compare_digest(presented, access_key.digest):
            found = access_key
    return found
