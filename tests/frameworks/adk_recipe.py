"""Google's Agent Development Kit: an Agent run by its InMemoryRunner, on Gemini(base_url=URL)."""

import os

from _common import MODEL, PROMPTS, Weather, get_weather, run
from google.adk.agents import Agent
from google.adk.agents.run_config import RunConfig, StreamingMode
from google.adk.models import Gemini
from google.adk.runners import InMemoryRunner
from google.genai import types


async def _run_agent(url, key, prompt, run_config=None, **agent_args):
    """The texts of the agent's partial and final events, and the session's state."""
    os.environ["GOOGLE_API_KEY"] = key
    agent = Agent(name="assistant", model=Gemini(model=MODEL, base_url=url), instruction="Be brief.", **agent_args)
    runner = InMemoryRunner(agent=agent, app_name="recipe")
    session = await runner.session_service.create_session(app_name="recipe", user_id="user")
    message = types.Content(role="user", parts=[types.Part(text=prompt)])
    pieces, finals = [], []
    async for event in runner.run_async(user_id="user", session_id=session.id, new_message=message,
                                        run_config=run_config or RunConfig()):
        text = "".join(part.text or "" for part in (event.content.parts or [])) if event.content else ""
        (pieces if event.partial else finals).append(text)
    session = await runner.session_service.get_session(app_name="recipe", user_id="user", session_id=session.id)
    return {"text": finals[-1], "pieces": pieces, "events": len(finals), "state": session.state}


def generate(url, key):
    return _run_agent(url, key, PROMPTS["generate"])


def stream(url, key):
    return _run_agent(url, key, PROMPTS["stream"], RunConfig(streaming_mode=StreamingMode.SSE))


def tools(url, key):
    return _run_agent(url, key, PROMPTS["tools"], tools=[get_weather])


async def structured(url, key):
    result = await _run_agent(url, key, PROMPTS["structured"], output_schema=Weather, output_key="weather")
    return {"output_schema": result["state"]["weather"]}


if __name__ == "__main__":
    run({"generate": generate, "stream": stream, "tools": tools, "structured": structured})
