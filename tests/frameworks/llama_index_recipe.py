"""LlamaIndex: the GoogleGenAI LLM with http_options=HttpOptions(base_url=URL), and a FunctionAgent."""

from _common import MODEL, PROMPTS, Weather, get_weather, run
from google.genai.types import HttpOptions
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.llms import ChatMessage
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index.llms.google_genai import GoogleGenAI


def _llm(url, key):
    return GoogleGenAI(model=MODEL, api_key=key, http_options=HttpOptions(base_url=url))


def _user(prompt):
    return [ChatMessage(role="user", content=prompt)]


def generate(url, key):
    return {"text": _llm(url, key).chat(_user(PROMPTS["generate"])).message.content}


def stream(url, key):
    return {"pieces": [response.delta for response in _llm(url, key).stream_chat(_user(PROMPTS["stream"]))]}


async def tools(url, key):
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(get_weather)], llm=_llm(url, key))
    return {"text": str(await agent.run(PROMPTS["tools"]))}


def structured(url, key):
    llm = _llm(url, key)
    predicted = llm.structured_predict(Weather, PromptTemplate(PROMPTS["structured"]))
    chatted = llm.as_structured_llm(Weather).chat(_user(PROMPTS["structured"])).raw
    return {"structured_predict": predicted.model_dump(), "as_structured_llm": chatted.model_dump()}


if __name__ == "__main__":
    run({"generate": generate, "stream": stream, "tools": tools, "structured": structured})
