// Drives the official @google/genai SDK (Node) against the function, for tests/test_js_sdk.py.
//
//   GENAI_BASE_URL=http://127.0.0.1:PORT GENAI_API_KEY=key node genai.mjs OPERATION '{"json": "args"}'
//
// Prints one JSON object on stdout: {"result": ..., "error": null | {name, status, message},
// "requests": [{method, url, key, uploadCommand, uploadOffset, size}]} (the HTTP requests the SDK
// made, seen by wrapping fetch: the key and upload headers they carried, their body's size).
// Common args: apiVersion (omitted: the SDK's default), model (default qwen-turbo).
import { ApiError, GoogleGenAI } from "@google/genai";

const requests = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const method = (init && init.method) || (typeof input === "object" && input.method) || "GET";
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  const body = init?.body;
  requests.push({
    method,
    url,
    key: headers.get("x-goog-api-key"),
    uploadCommand: headers.get("x-goog-upload-command"),
    uploadOffset: headers.get("x-goog-upload-offset"),
    size: body == null ? 0 : typeof body === "string" ? Buffer.byteLength(body) : body.size ?? body.byteLength ?? null,
  });
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

  // Uploads a Blob of args.size bytes (byte i is (i * 31 + 7) % 251) as args.mimeType, gets it back,
  // caches a conversation holding it, gets the cache, generates with it, deletes the cache and the
  // file, then gets the cache again (its error, reported in afterDelete).
  async filesAndCaches() {
    const bytes = new Uint8Array(args.size);
    for (let i = 0; i < args.size; i++) bytes[i] = (i * 31 + 7) % 251;
    const config = { mimeType: args.mimeType, displayName: "pattern" };
    const uploaded = await ai.files.upload({ file: new Blob([bytes]), config });
    const got = await ai.files.get({ name: uploaded.name });
    const cache = await ai.caches.create({
      model,
      config: {
        contents: [
          {
            role: "user",
            parts: [{ text: "Keep this in mind:" }, { fileData: { fileUri: got.uri, mimeType: got.mimeType } }],
          },
          { role: "model", parts: [{ text: "Noted." }] },
        ],
        systemInstruction: "Answer briefly.",
        ttl: "300s",
      },
    });
    const cacheGot = await ai.caches.get({ name: cache.name });
    const response = await ai.models.generateContent({
      model, contents: "What was it?", config: { cachedContent: cache.name },
    });
    await ai.caches.delete({ name: cache.name });
    await ai.files.delete({ name: uploaded.name });
    let afterDelete = null;
    try {
      await ai.caches.get({ name: cache.name });
    } catch (caught) {
      afterDelete = { isApiError: caught instanceof ApiError, status: caught?.status ?? null };
    }
    return { uploaded, got, cache, cacheGot, text: response.text, afterDelete };
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
