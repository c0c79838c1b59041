"""What the framework scripts share: the tool they give the model, the structured-output shape, and
the runner that prints each scenario's result (or its error) as one JSON line for
tests/test_frameworks.py. Run in the frameworks' own virtual environment (requirements.txt here)."""

import asyncio
import json
import sys
import traceback

import pydantic

MODEL = "qwen-turbo"
PROMPTS = {
    "generate": "Say hello",
    "stream": "Count to five in words",
    "tools": "What is the weather in Paris?",
    "structured": "Describe the weather in Paris",
}
calls = []  # the arguments the tool ran with, in order


def get_weather(city: str) -> dict:
    """The current weather in a city."""
    calls.append({"city": city})
    return {"city": city, "forecast": "sunny, 21 C"}


class Weather(pydantic.BaseModel):
    """The weather in a city."""

    city: str
    temperature_c: int


def run(scenarios):
    """argv: URL KEY [scenario...]. Runs each scenario (a function, sync or async, of URL and KEY);
    prints {"scenario": {"result": ..., "error": null | traceback, "tool_calls": [...]}} on one line."""
    url, key, *names = sys.argv[1:]
    results = {}
    for name in names or scenarios:
        del calls[:]
        try:
            result = scenarios[name](url, key)
            if asyncio.iscoroutine(result):
                result = asyncio.run(result)
            results[name] = {"result": result, "error": None, "tool_calls": list(calls)}
        except Exception:  # reported to the test, which fails with it
            results[name] = {"result": None, "error": traceback.format_exc(), "tool_calls": list(calls)}
    print(json.dumps(results))
