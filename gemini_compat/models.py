"""Which upstream model a requested model name means, and whether the team may call it."""

from .errors import NotFound


def upstream_model(settings, route):
    """The upstream model ID for ``route.model``: its alias target, if any; 404 if not allowed."""
    model = settings.model_aliases.get(route.model, route.model)
    if settings.allowed_models and model not in settings.allowed_models:
        # Google's wording for a model that does not exist: a model the team may not use is not there.
        raise NotFound(
            f"models/{route.model} is not found for API version {route.version}, or is not supported "
            f"for {route.action}. Call ListModels to see the list of available models and their supported methods."
        )
    return model
