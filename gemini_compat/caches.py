"""cachedContents over our own store: create/get/list/patch/delete, and a request that names one
made whole (the cache's system instruction, tools and contents, then the request's)."""


class CachedContents:
    def __init__(self, settings, store, files, upstream):
        self.settings = settings
        self.store = store
        self.files = files
        self.upstream = upstream

    def respond(self, request, route, caller, log):
        raise NotImplementedError  # TODO(issue 16, caches helper)

    def materialized(self, body, route, caller):
        """A validated generateContent request; with ``cachedContent``, the whole request it stands for."""
        return body  # TODO(issue 16, caches helper)

    def counted_request(self, body, route, caller):
        """A validated countTokens request, its generateContentRequest's cachedContent made whole."""
        return body  # TODO(issue 16, caches helper)
