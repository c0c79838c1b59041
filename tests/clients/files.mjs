// Drives the official @google/genai SDK's files and caches methods against the function, for
// tests/test_files_sdk.py:
//
//   GENAI_BASE_URL=http://127.0.0.1:PORT GENAI_API_KEY=key node files.mjs '{"size": 9437184, ...}'
//
// Uploads a Blob of `size` bytes (byte i is (i * 31 + 7) % 251) as `mimeType`, gets it back, caches
// a conversation holding it (with `systemInstruction`), gets the cache, generates with it, deletes
// the cache and the file, and gets the cache again (an error, reported). Prints one JSON object:
// {"result": {...}, "error": null | {name, status, message}, "requests": [{method, url, key,
// uploadCommand, uploadOffset, size}]} (the HTTP requests the SDK made, seen by wrapping fetch).
import { ApiError, GoogleGenAI } from "@google/genai";

const requests = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  const body = init?.body;
  requests.push({
    method: init?.method ?? (input instanceof Request ? input.method : "GET"),
    url,
    key: headers.get("x-goog-api-key"),
    uploadCommand: headers.get("x-goog-upload-command"),
    uploadOffset: headers.get("x-goog-upload-offset"),
    size: body == null ? 0 : typeof body === "string" ? Buffer.byteLength(body) : body.size ?? body.byteLength ?? null,
  });
  return realFetch(input, init);
};

const args = JSON.parse(process.argv[2] || "{}");
const model = args.model || "qwen-turbo";
const httpOptions = { baseUrl: process.env.GENAI_BASE_URL };
if (args.apiVersion) httpOptions.apiVersion = args.apiVersion;
const ai = new GoogleGenAI({ apiKey: process.env.GENAI_API_KEY, vertexai: false, httpOptions });

function pattern(size) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) % 251;
  return bytes;
}

async function flow() {
  const blob = new Blob([pattern(args.size)]);
  const uploaded = await ai.files.upload({ file: blob, config: { mimeType: args.mimeType, displayName: "pattern" } });
  const got = await ai.files.get({ name: uploaded.name });
  const cache = await ai.caches.create({
    model,
    config: {
      contents: [
        { role: "user", parts: [{ text: "Keep this in mind:" }, { fileData: { fileUri: got.uri, mimeType: got.mimeType } }] },
        { role: "model", parts: [{ text: "Noted." }] },
      ],
      systemInstruction: "Answer briefly.",
      ttl: "300s",
    },
  });
  const cacheGot = await ai.caches.get({ name: cache.name });
  const response = await ai.models.generateContent({ model, contents: "What was it?", config: { cachedContent: cache.name } });
  await ai.caches.delete({ name: cache.name });
  await ai.files.delete({ name: uploaded.name });
  let afterDelete = null;
  try {
    await ai.caches.get({ name: cache.name });
  } catch (caught) {
    afterDelete = { isApiError: caught instanceof ApiError, status: caught?.status ?? null };
  }
  return { uploaded, got, cache, cacheGot, text: response.text, afterDelete };
}

let result = null;
let error = null;
try {
  result = await flow();
} catch (caught) {
  error = {
    name: caught?.name ?? String(caught),
    isApiError: caught instanceof ApiError,
    status: caught?.status ?? null,
    message: caught?.message ?? String(caught),
  };
}
process.stdout.write(JSON.stringify({ result, error, requests }) + "\n");
