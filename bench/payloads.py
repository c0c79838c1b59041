"""Request bodies the benchmark sends: Gemini requests, and the OpenAI requests they stand for.

- ``typical()``: a ~2 KB chat request (system instruction, a few turns, generationConfig, one small
  tool), what most SDK callers send.
- ``small()``: one short user message, the least the function can be asked to do.
- ``cli_like()``: a ~40 KB request shaped like the Gemini CLI's: a long system instruction, ~20 tools
  with ``parametersJsonSchema`` plus a few with Gemini ``parameters`` (upper-case types), and a
  history with functionCall / functionResponse turns.

The OpenAI equivalents are written by hand (not produced by the code under test), so the direct path
does not depend on the translation; the fast upstream only looks at ``"stream":true`` and ``chunks:N``.
"""

import json

MODEL = "qwen-turbo"

SYSTEM = (
    "You are a concise, friendly assistant for a travel company. Answer in the language of the question. "
    "Prefer short paragraphs, give concrete numbers when you know them, and say so when you are unsure. "
    "Never invent booking references or prices; when a booking detail is needed, call a tool instead."
)
TURNS = [
    ("user", "Hi! I am planning a four-day trip to France in May with my partner. We like museums, good food "
             "and walking, but we do not want to spend the whole time in queues. Where should we start?"),
    ("model", "A good base is Paris: three days there and one day trip (Giverny or Reims) fits four days well. "
              "Book the Louvre and the Musee d'Orsay online with a time slot to skip most of the queues, and "
              "visit the Orangerie on the same day as a walk through the Tuileries. For food, the 11th "
              "arrondissement has many bistros with fair prices; lunch menus are the best value."),
    ("user", "Sounds great. How warm is it usually in May, and do we need to book restaurants in advance? "
             "Also, is the museum pass worth it for three days, or should we just buy single tickets?"),
    ("model", "May is mild: typically 12 to 20 degrees Celsius, with some showers, so bring a light jacket. "
              "Popular restaurants are worth booking two or three days ahead, especially for Friday and "
              "Saturday dinner. The Paris Museum Pass pays off if you visit at least four paid sites in two days."),
    ("user", "Thanks. And what is the capital of France, by the way? My partner insists it used to be Lyon."),
]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather and a three-day forecast for a city.",
    "parametersJsonSchema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"},
        },
        "required": ["city"],
    },
}
GENERATION_CONFIG = {
    "temperature": 0.7, "topP": 0.95, "maxOutputTokens": 1024, "stopSequences": ["\n\nUser:"],
    "thinkingConfig": {"thinkingBudget": 0},
}


def _markers(chunks, gap_ms):
    """The fast upstream's instructions, riding in the last message: answer length, pause after the first event."""
    text = f" (chunks:{chunks})" if chunks is not None else ""
    return text + (f" (gap:{gap_ms}ms)" if gap_ms else "")


def typical(chunks=None, gap_ms=None):
    """The ~2 KB request; with ``chunks``/``gap_ms`` the last message carries the fast upstream's markers."""
    contents = [{"role": role, "parts": [{"text": text}]} for role, text in TURNS]
    contents[-1]["parts"][0]["text"] += _markers(chunks, gap_ms)
    return {
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "contents": contents,
        "generationConfig": GENERATION_CONFIG,
        "tools": [{"functionDeclarations": [WEATHER_TOOL]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
    }


def typical_openai(stream=False, chunks=None, gap_ms=None):
    body = typical(chunks, gap_ms)
    messages = [{"role": "system", "content": SYSTEM}]
    for content in body["contents"]:
        role = "assistant" if content["role"] == "model" else "user"
        messages.append({"role": role, "content": content["parts"][0]["text"]})
    request = {
        "model": MODEL, "messages": messages, "temperature": 0.7, "top_p": 0.95, "max_tokens": 1024,
        "stop": ["\n\nUser:"], "reasoning_effort": "none",
        "tools": [{"type": "function", "function": {"name": WEATHER_TOOL["name"],
                                                    "description": WEATHER_TOOL["description"],
                                                    "parameters": WEATHER_TOOL["parametersJsonSchema"]}}],
        "tool_choice": "auto",
    }
    return _with_stream(request, stream)


def small(chunks=None, gap_ms=None):
    text = "What is the capital of France?" + _markers(chunks, gap_ms)
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def small_openai(stream=False, chunks=None, gap_ms=None):
    text = small(chunks, gap_ms)["contents"][0]["parts"][0]["text"]
    return _with_stream({"model": MODEL, "messages": [{"role": "user", "content": text}]}, stream)


def _with_stream(request, stream):
    if stream:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return request


def encode(body):
    """Compact JSON bytes, the way SDKs and the function send bodies."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


# --- the Gemini-CLI-like request -----------------------------------------------------------------

_CLI_RULES = [
    "Rigorously adhere to existing project conventions when reading or modifying code.",
    "Never assume a library is available; verify its established usage within the project first.",
    "Mimic the style, structure, framework choices, typing and architectural patterns of existing code.",
    "Add code comments sparingly; focus on why something is done, especially for complex logic.",
    "Do not take significant actions beyond the clear scope of the request without confirming.",
    "Always use absolute paths for file system tools; relative paths are not supported.",
    "Explain critical shell commands that modify the file system before executing them.",
    "Execute independent tool calls in parallel when feasible, e.g. searching the codebase.",
    "Prefer non-interactive commands; use flags such as --yes or CI=true when available.",
    "Keep responses short and direct; aim for fewer than three lines of text when practical.",
]


def _cli_system_instruction(target=8000):
    lines = ["You are an interactive CLI agent specializing in software engineering tasks.", ""]
    section = 0
    while sum(len(line) + 1 for line in lines) < target:
        section += 1
        lines.append(f"# Section {section}: Core mandates and workflow")
        lines += [f"- {rule}" for rule in _CLI_RULES]
        lines.append("")
    return "\n".join(lines)


def _json_schema_tool(name, description, properties, required):
    return {"name": name, "description": description,
            "parametersJsonSchema": {"type": "object", "properties": properties, "required": required}}


def _string(description, **extra):
    return {"type": "string", "description": description, **extra}


_USAGE_NOTES = (
    "\n\nUsage notes for {name}: call it only when the information is not already in the conversation. "
    "Paths must be absolute and inside the project root; the tool refuses anything else. Large results are "
    "truncated and say so in their last line; page through them instead of asking for everything at once. "
    "When several independent calls are needed, issue them together in one turn. Failures are reported in "
    "the response's error field; read it and correct the arguments rather than repeating the same call."
)


def _cli_json_schema_tools(count=20):
    templates = [
        ("read_file", "Reads and returns the content of a specified file. If the file is large, the content "
         "is truncated; use offset and limit to page through it. Handles text, images and PDF files.",
         {"absolute_path": _string("The absolute path to the file to read."),
          "offset": {"type": "number", "description": "The 0-based line number to start reading from."},
          "limit": {"type": "number", "description": "Maximum number of lines to read."}}, ["absolute_path"]),
        ("write_file", "Writes content to a specified file in the local filesystem. The user can modify the "
         "content before it is written; the file is created when it does not exist.",
         {"file_path": _string("The absolute path to the file to write to."),
          "content": _string("The content to write to the file.")}, ["file_path", "content"]),
        ("replace", "Replaces text within a file. By default replaces a single occurrence; set "
         "expected_replacements to replace several. Always read the file first to get exact context.",
         {"file_path": _string("The absolute path to the file to modify."),
          "old_string": _string("The exact literal text to replace, with at least three lines of context."),
          "new_string": _string("The exact literal text to replace old_string with."),
          "expected_replacements": {"type": "number", "minimum": 1,
                                    "description": "Number of replacements expected."}},
         ["file_path", "old_string", "new_string"]),
        ("glob", "Efficiently finds files matching specific glob patterns, returning absolute paths sorted "
         "by modification time, newest first.",
         {"pattern": _string("The glob pattern to match against, e.g. src/**/*.py."),
          "path": _string("The absolute path to the directory to search within."),
          "case_sensitive": {"type": "boolean", "description": "Whether the search is case-sensitive."},
          "respect_git_ignore": {"type": "boolean", "description": "Whether to respect .gitignore."}},
         ["pattern"]),
        ("search_file_content", "Searches for a regular expression pattern within the content of files in "
         "a directory, returning matching lines with their file paths and line numbers.",
         {"pattern": _string("The regular expression to search for."),
          "path": _string("The absolute path to the directory to search within."),
          "include": _string("A glob pattern to filter which files are searched.")}, ["pattern"]),
        ("run_shell_command", "Executes a given shell command as bash -c <command>. Command can start "
         "background processes using &. Returns stdout, stderr, exit code, signal and background PIDs.",
         {"command": _string("Exact bash command to execute."),
          "description": _string("Brief description of the command for the user."),
          "directory": _string("Directory to run the command in, relative to the project root.")},
         ["command"]),
        ("list_directory", "Lists the names of files and subdirectories directly within a directory path, "
         "optionally ignoring entries matching glob patterns.",
         {"path": _string("The absolute path to the directory to list."),
          "ignore": {"type": "array", "items": {"type": "string"}, "description": "Glob patterns to ignore."},
          "file_filtering_options": {
              "type": "object", "description": "Whether to respect ignore patterns from .gitignore or .geminiignore",
              "properties": {"respect_git_ignore": {"type": "boolean"}, "respect_gemini_ignore": {"type": "boolean"}}}},
         ["path"]),
        ("read_many_files", "Reads content from multiple files specified by paths or glob patterns and "
         "concatenates them, separated by a marker line with the file path.",
         {"paths": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1},
                    "description": "Paths or glob patterns relative to the target directory."},
          "include": {"type": "array", "items": {"type": "string"}, "description": "Additional glob patterns."},
          "exclude": {"type": "array", "items": {"type": "string"}, "description": "Glob patterns to exclude."},
          "recursive": {"type": "boolean", "description": "Whether to search recursively."}}, ["paths"]),
        ("web_fetch", "Processes content from URLs embedded in a prompt: summarises, compares or extracts "
         "information. Up to twenty URLs, which must start with http:// or https://.",
         {"prompt": _string("A prompt that includes the URLs and instructions for processing them.")},
         ["prompt"]),
        ("save_memory", "Saves a specific piece of information or fact to long-term memory, for use in "
         "future sessions. Use only for short facts the user explicitly asks to remember.",
         {"fact": _string("The specific fact or piece of information to remember.")}, ["fact"]),
        ("write_todos", "Lists subtasks required to complete a user request and tracks their status, so that "
         "the user can follow the progress of a complex task.",
         {"todos": {"type": "array", "description": "The complete list of todo items.",
                    "items": {"type": "object", "properties": {
                        "description": _string("The description of the task."),
                        "status": {"type": "string", "enum": ["pending", "in_progress", "completed", "cancelled"]}},
                        "required": ["description", "status"], "additionalProperties": False}}}, ["todos"]),
    ]
    tools = []
    for index in range(count):
        name, description, properties, required = templates[index % len(templates)]
        if index >= len(templates):  # MCP servers add more tools of the same shapes under their own names
            name = f"mcp_server_{index}__{name}"
        # Real tool descriptions carry long usage notes; these make the declarations CLI-sized.
        description += _USAGE_NOTES.format(name=name)
        tools.append(_json_schema_tool(name, description, properties, required))
    return tools


def _cli_gemini_schema_tools():
    return [
        {"name": "create_issue", "description": "Creates an issue in the project's tracker.",
         "parameters": {"type": "OBJECT", "properties": {
             "title": {"type": "STRING", "description": "Issue title."},
             "body": {"type": "STRING", "description": "Issue body in Markdown."},
             "labels": {"type": "ARRAY", "items": {"type": "STRING"}, "description": "Labels to apply."},
             "priority": {"type": "STRING", "enum": ["low", "medium", "high"], "nullable": True}},
             "required": ["title"], "propertyOrdering": ["title", "body", "labels", "priority"]}},
        {"name": "query_database", "description": "Runs a read-only SQL query against the analytics database.",
         "parameters": {"type": "OBJECT", "properties": {
             "sql": {"type": "STRING", "description": "The SQL statement."},
             "max_rows": {"type": "INTEGER", "minimum": 1, "maximum": 10000, "description": "Row limit."},
             "params": {"type": "OBJECT", "description": "Named parameters.",
                        "properties": {"since": {"type": "STRING", "format": "date-time"},
                                       "limit": {"type": "INTEGER"}}}},
             "required": ["sql"]}},
        {"name": "send_notification", "description": "Sends a notification to a chat channel.",
         "parameters": {"type": "OBJECT", "properties": {
             "channel": {"type": "STRING", "description": "Channel name."},
             "message": {"type": "STRING", "description": "Message text."},
             "urgent": {"type": "BOOLEAN", "description": "Whether to page on-call."}},
             "required": ["channel", "message"]}},
    ]


_SOURCE = "\n".join(
    f"def handler_{i}(request):\n    \"\"\"Handle request kind {i}.\"\"\"\n    return process(request, kind={i})\n"
    for i in range(40)
)


def cli_like():
    """The ~40 KB Gemini-CLI-like request (about 40 KB once encoded; run.py reports the exact size)."""
    history = [
        {"role": "user", "parts": [{"text": "This is the Gemini CLI. Today's date is Friday, November 27, 2026. "
                                            "My operating system is linux. I'm in /home/dev/project."},
                                   {"text": "Find where the request handlers are defined and add type hints."}]},
        {"role": "model", "parts": [{"text": "I'll look for the handlers first."},
                                    {"functionCall": {"name": "search_file_content",
                                                      "args": {"pattern": "def handler_", "path": "/home/dev/project"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "search_file_content", "response": {
            "output": "\n".join(f"src/handlers.py:{3 * i + 1}:def handler_{i}(request):" for i in range(40))}}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "read_file",
                                                      "args": {"absolute_path": "/home/dev/project/src/handlers.py"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "read_file", "response": {"output": _SOURCE}}}]},
        {"role": "model", "parts": [{"text": "The file defines 40 handlers with the same signature. I'll add "
                                             "`request: Request` and a return type to each."},
                                    {"functionCall": {"name": "replace", "args": {
                                        "file_path": "/home/dev/project/src/handlers.py",
                                        "old_string": "def handler_0(request):",
                                        "new_string": "def handler_0(request: Request) -> Response:"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "replace", "response": {
            "output": "Successfully modified file: /home/dev/project/src/handlers.py (1 replacements)."}}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "run_shell_command", "args": {
            "command": "python -m pytest -q tests/test_handlers.py", "description": "Run the handler tests."}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "run_shell_command", "response": {
            "output": "Command: python -m pytest -q tests/test_handlers.py\nDirectory: (root)\nStdout: "
                      + "." * 120 + "\n120 passed in 0.84s\nStderr: (empty)\nExit Code: 0"}}}]},
        {"role": "model", "parts": [
            {"text": "All 120 tests pass. Shall I apply the same change to the other 39 handlers?"}]},
        {"role": "user", "parts": [{"text": "Yes, please do all of them, and run the type checker afterwards."}]},
    ]
    return {
        "systemInstruction": {"role": "user", "parts": [{"text": _cli_system_instruction()}]},
        "contents": history,
        "tools": [{"functionDeclarations": _cli_json_schema_tools() + _cli_gemini_schema_tools()}],
        "generationConfig": {"temperature": 0, "topP": 1,
                             "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 8192}},
    }
