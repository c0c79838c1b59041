// Drives the official @google/genai SDK (Node) against the function, for tests/test_js_sdk.py.
//
//   GENAI_BASE_URL=http://127.0.0.1:PORT GENAI_API_KEY=key node genai.mjs OPERATION '{"json": "args"}'
//
// Prints one JSON object on stdout: {"result": ..., "error": null | {name, status, message},
// "requests": [{method, url}]} (the HTTP requests the SDK made, seen by wrapping fetch).
// Common args: apiVersion (omitted: the SDK's default), model (default qwen-turbo).
import { ApiError, GoogleGenAI } from "@google/genai";

const requests = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const method = (init && init.method) || (typeof input === "object" && input.method) || "GET";
  requests.push({ method, url });
  return realFetch(input, init);
};

const [operation, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs || "{}");
const model = args.model || "qwen-turbo";

const httpOptions = { baseUrl: process.env.GENAI_BASE_URL };
if (args.apiVersion) httpOptions.apiVersion = args.apiVersion;
const ai = new GoogleGenAI({ apiKey: process.env.GENAI_API_KEY, vertexai: false, httpOptions });

const operations = {
  async generate() {
    const response = await ai.models.generateContent({ model, contents: args.text, config: args.config });
    const candidate = response.candidates[0];
    return {
      text: response.text,
      finishReason: candidate.finishReason,
      role: candidate.content.role,
      usage: response.usageMetadata,
      modelVersion: response.modelVersion,
      responseId: response.responseId,
    };
  },

  async stream() {
    const chunks = [];
    const stream = await ai.models.generateContentStream({ model, contents: args.text, config: args.config });
    for await (const chunk of stream) {
      const candidate = (chunk.candidates || [])[0];
      chunks.push({ text: chunk.text ?? null, finishReason: candidate?.finishReason ?? null,
                    usage: chunk.usageMetadata ?? null });
    }
    return { chunks };
  },

  async functionCall() {
    const response = await ai.models.generateContent({
      model,
      contents: args.text,
      config: {
        tools: [{ functionDeclarations: [{
          name: "get_weather",
          description: "The weather in a city",
          parametersJsonSchema: {
            type: "object",
            properties: { city: { type: "string" }, unit: { type: "string", enum: ["C", "F"] } },
            required: ["city"],
          },
        }] }],
      },
    });
    return {
      functionCalls: response.functionCalls,
      finishReason: response.candidates[0].finishReason,
      text: response.candidates[0].content.parts.filter((p) => p.text).map((p) => p.text).join("") || null,
    };
  },

  async countTokens() {
    const response = await ai.models.countTokens({ model, contents: args.text });
    return { totalTokens: response.totalTokens };
  },

  async embed() {
    const response = await ai.models.embedContent({ model, contents: args.contents, config: args.config });
    return { embeddings: response.embeddings.map((e) => e.values) };
  },

  async listModels() {
    const names = [];
    const pager = await ai.models.list({ config: { pageSize: args.pageSize } });
    // A pager that never ends (an empty nextPageToken) is a failure, not a hang.
    const limit = args.limit ?? 100;
    for await (const entry of pager) {
      names.push(entry.name);
      if (names.length > limit) return { names, runaway: true };
    }
    return { names, runaway: false };
  },

  async getModel() {
    const entry = await ai.models.get({ model });
    return { name: entry.name, supportedActions: entry.supportedActions ?? null, displayName: entry.displayName };
  },
};

let result = null;
let error = null;
try {
  if (!(operation in operations)) throw new Error(`unknown operation ${operation}`);
  result = await operations[operation]();
} catch (caught) {
  error = {
    name: caught?.name ?? String(caught),
    isApiError: caught instanceof ApiError,
    status: caught?.status ?? null,
    message: caught?.message ?? String(caught),
  };
}
process.stdout.write(JSON.stringify({ result, error, requests }) + "\n");
