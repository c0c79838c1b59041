"""Google's ADK with context caching: an App whose ContextCacheConfig has ADK create cachedContents,
use them, and replace them every ``cache_intervals`` turns, over one session of several turns with a
tool, on Gemini(base_url=URL). For tests/test_framework_caches.py.

The model is named ``gemini-2.5-flash`` (the function aliases it): ADK applies Google's cache floor
(2,048 tokens) to that name, as it does for teams running unchanged Gemini code."""

import os

from _common import get_weather, run
from google.adk.agents import Agent
from google.adk.agents.context_cache_config import ContextCacheConfig
from google.adk.apps.app import App
from google.adk.models import Gemini
from google.adk.runners import InMemoryRunner
from google.genai import types

MODEL = "gemini-2.5-flash"
QUESTIONS = ["What is the weather in Paris?", "And in Lyon?", "And in Nice?", "And in Lille?"]


async def session(url, key):
    """Per turn: the final text, and the cache metadata of the model's answers (ADK's own view)."""
    os.environ["GOOGLE_API_KEY"] = key
    agent = Agent(name="assistant", model=Gemini(model=MODEL, base_url=url), instruction="Be brief.",
                  tools=[get_weather])
    app = App(name="cached", root_agent=agent,
              context_cache_config=ContextCacheConfig(min_tokens=0, cache_intervals=2, ttl_seconds=60))
    runner = InMemoryRunner(app=app)
    chat = await runner.session_service.create_session(app_name="cached", user_id="user")
    turns = []
    for question in QUESTIONS:
        texts, caches = [], []
        message = types.Content(role="user", parts=[types.Part(text=question)])
        async for event in runner.run_async(user_id="user", session_id=chat.id, new_message=message):
            if event.cache_metadata is not None:
                caches.append(event.cache_metadata.model_dump(mode="json"))
            if event.content and not event.partial:
                texts.append("".join(part.text or "" for part in event.content.parts or []))
        turns.append({"text": texts[-1], "caches": caches})
    return turns


if __name__ == "__main__":
    run({"session": session})
