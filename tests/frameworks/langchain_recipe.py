"""LangChain: ChatGoogleGenerativeAI(base_url=URL), and tools through create_agent's loop."""

from _common import MODEL, PROMPTS, Weather, get_weather, run
from langchain.agents import create_agent
from langchain_google_genai import ChatGoogleGenerativeAI


def _chat(url, key):
    return ChatGoogleGenerativeAI(model=MODEL, api_key=key, base_url=url)


def generate(url, key):
    return {"text": _chat(url, key).invoke(PROMPTS["generate"]).text}


def stream(url, key):
    return {"pieces": [piece.text for piece in _chat(url, key).stream(PROMPTS["stream"])]}


def tools(url, key):
    agent = create_agent(_chat(url, key), tools=[get_weather])
    messages = agent.invoke({"messages": [{"role": "user", "content": PROMPTS["tools"]}]})["messages"]
    return {"text": messages[-1].text, "messages": [message.type for message in messages]}


def structured(url, key):
    as_schema = _chat(url, key).with_structured_output(Weather).invoke(PROMPTS["structured"])
    as_tool = _chat(url, key).with_structured_output(Weather, method="function_calling").invoke(PROMPTS["structured"])
    # The older spelling of base_url, still accepted.
    old_knob = ChatGoogleGenerativeAI(model=MODEL, api_key=key, client_options={"api_endpoint": url})
    return {"json_schema": as_schema.model_dump(), "function_calling": as_tool.model_dump(),
            "client_options": old_knob.with_structured_output(Weather).invoke(PROMPTS["structured"]).model_dump()}


if __name__ == "__main__":
    run({"generate": generate, "stream": stream, "tools": tools, "structured": structured})
