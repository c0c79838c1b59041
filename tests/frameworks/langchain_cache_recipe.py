"""LangChain's documented context-caching flow (the "Single file example" in ChatGoogleGenerativeAI's
docstring) with only base_url and the key added: google-genai (2.x, as LangChain pins it) uploads a
file and polls it while PROCESSING, caches it with a system instruction, and
ChatGoogleGenerativeAI(cached_content=...) asks about it. Then the same model with bind_tools, which
Google refuses next to a cache (langchain-google #1618). For tests/test_framework_caches.py."""

import tempfile
import time

from _common import get_weather, run
from google import genai
from google.genai import types
from langchain.messages import HumanMessage
from langchain_google_genai import ChatGoogleGenerativeAI

MODEL = "gemini-3.1-pro-preview"  # the docs' name; the function aliases it
LINE = "The launch is on Tuesday.\n"
LINES = 8 * 1024 * 1024 // len(LINE) + 1000  # past one 8 MiB chunk
QUESTION = "Summarize the main points of the content."


def cached(url, key):
    client = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url))
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as document:
        document.write(LINE * LINES)
        document.flush()
        file = client.files.upload(file=document.name)
    while file.state.name == "PROCESSING":
        time.sleep(2)
        file = client.files.get(name=file.name)
    cache = client.caches.create(model=MODEL, config=types.CreateCachedContentConfig(
        display_name="Cached Content", system_instruction="You answer from the file.", contents=[file], ttl="300s"))
    llm = ChatGoogleGenerativeAI(model=MODEL, cached_content=cache.name, api_key=key, base_url=url)
    answer = llm.invoke([HumanMessage(content=QUESTION)])
    try:
        llm.bind_tools([get_weather]).invoke([HumanMessage(content=QUESTION)])
        refused = None
    except Exception as error:  # what LangChain raises for Google's 400
        refused = str(error)
    return {"file": {"uri": file.uri, "size": file.size_bytes, "sha256Hash": file.sha256_hash},
            "cache": cache.name, "answer": answer.text, "refused": refused}


if __name__ == "__main__":
    run({"cached": cached})
