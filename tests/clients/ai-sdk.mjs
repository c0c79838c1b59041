// The Vercel AI SDK (`ai` with `@ai-sdk/google`) pointed at the function, for tests/test_frameworks.py.
//
//   node ai-sdk.mjs URL KEY [scenario...]
//
// Prints one JSON line, as tests/frameworks/_common.py does for the Python frameworks:
// {"scenario": {"result": ..., "error": null | stack, "tool_calls": [arguments the tool ran with]}}.
import { createGoogleGenerativeAI } from "@ai-sdk/google";
import { generateObject, generateText, Output, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const [url, apiKey, ...names] = process.argv.slice(2);
const google = createGoogleGenerativeAI({ baseURL: `${url}/v1beta`, apiKey });
const model = google("qwen-turbo");
const calls = [];

const getWeather = tool({
  description: "The current weather in a city.",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => {
    calls.push({ city });
    return { city, forecast: "sunny, 21 C" };
  },
});

const scenarios = {
  async generate() {
    const { text, finishReason } = await generateText({ model, prompt: "Say hello" });
    // A model ID holding "/" is taken for a resource path unless written models/...
    const slashed = await generateText({ model: google("models/Qwen/Qwen2.5-7B-Instruct"), prompt: "Say hello" });
    return { text, finishReason, slashed: slashed.text };
  },

  async stream() {
    const result = streamText({ model, prompt: "Count to five in words" });
    const pieces = [];
    for await (const piece of result.textStream) pieces.push(piece);
    return { pieces, finishReason: await result.finishReason };
  },

  async tools() {
    const result = await generateText({
      model, prompt: "What is the weather in Paris?", tools: { get_weather: getWeather }, stopWhen: stepCountIs(2),
    });
    return { text: result.text, steps: result.steps.length };
  },

  async structured() {
    const schema = z.object({ city: z.string(), temperature_c: z.number().int() });
    const prompt = "Describe the weather in Paris";
    const { output } = await generateText({ model, prompt, output: Output.object({ schema }) });
    const { object } = await generateObject({ model, prompt, schema }); // deprecated in ai 6, still there
    return { "Output.object": output, generateObject: object };
  },
};

const results = {};
for (const name of names.length ? names : Object.keys(scenarios)) {
  calls.length = 0;
  try {
    results[name] = { result: await scenarios[name](), error: null, tool_calls: [...calls] };
  } catch (caught) {
    results[name] = { result: null, error: caught?.stack ?? String(caught), tool_calls: [...calls] };
  }
}
process.stdout.write(JSON.stringify(results) + "\n");
