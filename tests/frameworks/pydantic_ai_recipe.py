"""pydantic-ai: an Agent on GoogleModel with GoogleProvider(base_url=URL)."""

from _common import MODEL, PROMPTS, Weather, get_weather, run
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.models.google import GoogleModel
from pydantic_ai.providers.google import GoogleProvider


def _model(url, key):
    return GoogleModel(MODEL, provider=GoogleProvider(base_url=url, api_key=key))


def generate(url, key):
    return {"text": Agent(_model(url, key), instructions="Be brief.").run_sync(PROMPTS["generate"]).output}


async def stream(url, key):
    async with Agent(_model(url, key)).run_stream(PROMPTS["stream"]) as response:
        return {"pieces": [delta async for delta in response.stream_text(delta=True, debounce_by=None)]}


def tools(url, key):
    return {"text": Agent(_model(url, key), tools=[get_weather]).run_sync(PROMPTS["tools"]).output}


def structured(url, key):
    as_tool = Agent(_model(url, key), output_type=Weather).run_sync(PROMPTS["structured"]).output
    native = Agent(_model(url, key), output_type=NativeOutput(Weather)).run_sync(PROMPTS["structured"]).output
    return {"output_type": as_tool.model_dump(), "NativeOutput": native.model_dump()}


if __name__ == "__main__":
    run({"generate": generate, "stream": stream, "tools": tools, "structured": structured})
