"""Gemini embedContent / batchEmbedContents to OpenAI ``POST /embeddings`` and back. Pure."""

import array
import base64

from .errors import InvalidArgument, UpstreamError, field_path


def embedding_batches(requests: list[dict], requested_model: str, model: str,
                      base_path: list | None = None) -> list[tuple[list[int], dict]]:
    """OpenAI embedding requests for Gemini EmbedContentRequests, one per distinct
    ``outputDimensionality``, each with the positions its inputs came from.

    ``taskType`` and ``title`` have no OpenAI equivalent and are accepted but not used. A request's
    own ``model`` must be the one in the URL (``requested_model``, before aliases); ``model`` is
    what goes upstream. Error paths start at ``base_path`` (["requests"] for a batch)."""
    groups = {}
    for index, request in enumerate(requests):
        path = [*base_path, index] if base_path else []
        named = request.get("model")
        if named and named not in (requested_model, f"models/{requested_model}"):
            raise InvalidArgument(f"must be models/{requested_model}, the model in the URL",
                                  field=field_path(path + ["model"]))
        text = embedding_text(request["content"], path + ["content"])
        dimensions = request.get("outputDimensionality")
        positions, inputs = groups.setdefault(dimensions, ([], []))
        positions.append(index)
        inputs.append(text)
    batches = []
    for dimensions, (positions, inputs) in groups.items():
        payload = {"model": model, "input": inputs}
        if dimensions:
            payload["dimensions"] = dimensions
        batches.append((positions, payload))
    return batches


def embedding_text(content: dict, path: list) -> str:
    texts = []
    for index, part in enumerate(content["parts"]):
        if "text" not in part:
            raise InvalidArgument("only text can be embedded here", field=field_path(path + ["parts", index]))
        texts.append(part["text"])
    return "\n".join(texts)


def embedding_vectors(answer: object, count: int, dimensions: int | None = None) -> list[list[float]]:
    """The vectors of an OpenAI embeddings answer, in input order, each cut to its first
    ``dimensions`` values (the request's ``outputDimensionality``) when the upstream gave more.

    llama.cpp ignores ``dimensions``; keeping the first N values is Gemini's own (Matryoshka)
    truncation: ``[0.1, 0.2, 0.3, 0.4]`` with ``dimensions=2`` -> ``[0.1, 0.2]``. Fewer values than
    asked are kept as they came, not padded. Not re-normalised: Gemini leaves normalising an
    embedding of other than 3072 values to the caller, so clients already do it."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or len(data) != count:
        answered = len(data) if isinstance(data, list) else "no"
        raise UpstreamError(f"The upstream answered {answered} embeddings for {count} inputs.")
    ordered = sorted(data, key=_index)
    vectors = [_values(item.get("embedding") if isinstance(item, dict) else None) for item in ordered]
    return [values[:dimensions] for values in vectors] if dimensions else vectors


def _index(item):
    index = item.get("index", 0) if isinstance(item, dict) else 0
    if not isinstance(index, int):  # the vectors are put in input order by it
        raise UpstreamError("The upstream answered an embedding whose index is not an integer.")
    return index


def _values(embedding):
    if isinstance(embedding, str):  # encoding_format=base64: little-endian float32
        try:
            return array.array("f", base64.b64decode(embedding)).tolist()
        except ValueError:  # not base64, or not a whole number of float32 values
            raise UpstreamError("The upstream answered a base64 embedding that is not float32 values.") from None
    if isinstance(embedding, list) and all(isinstance(v, (int, float)) for v in embedding):
        return embedding
    raise UpstreamError("The upstream answered an embedding that is not a list of numbers.")
