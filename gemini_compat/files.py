"""The Files API over our own store: the resumable upload, files get/list/delete, and a
``fileData`` that names one of our files resolved into the request as its bytes."""


class Files:
    def __init__(self, settings, store, upstream, request_memory):
        self.settings = settings
        self.store = store
        self.upstream = upstream
        self.request_memory = request_memory

    def upload_chunk(self, request, route, log):
        raise NotImplementedError  # TODO(issue 16, files helper)

    def respond(self, request, route, caller, log):
        raise NotImplementedError  # TODO(issue 16, files helper)

    def resolved(self, body, caller, environ):
        """``body`` (a validated generate or countTokens request) with every fileData part that
        names one of the caller's files replaced by its bytes (inlineData)."""
        return body  # TODO(issue 16, files helper)
