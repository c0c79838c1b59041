"""Who the caller is: the API key, from wherever a Gemini client puts it."""

import re

from .errors import InvalidArgument, PermissionDenied

# Printable ASCII without spaces: anything else cannot be a key and must not reach an HTTP header.
_KEY = re.compile(r"^[\x21-\x7e]{1,4096}$")

MISSING_KEY = (
    "Method doesn't allow unregistered callers. Pass an API key in the x-goog-api-key header, "
    "the key query parameter, or an Authorization: Bearer header."
)


def caller_key(headers, args):
    """The key the caller presented: x-goog-api-key (the SDKs), ?key= (curl), or Authorization: Bearer."""
    key = headers.get("x-goog-api-key") or args.get("key") or args.get("$key")
    if not key:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            key = token
    key = (key or "").strip()
    if not key:
        # The real API answers a missing key with 403 PERMISSION_DENIED; so do we.
        raise PermissionDenied(MISSING_KEY)
    if not _KEY.match(key):
        raise InvalidArgument("API key not valid. Please pass a valid API key.")
    return key
