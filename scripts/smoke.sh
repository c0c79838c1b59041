#!/usr/bin/env bash
# Smoke-test a deployed endpoint the way a Gemini client uses it: one generateContent, one
# streamGenerateContent?alt=sse, and one bad request that must come back as a Gemini-style
# 400 INVALID_ARGUMENT. One PASS/FAIL line per check; exit status 1 if any check failed.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/smoke.sh URL KEY [MODEL]

  URL    The deployment's base URL, as deploy.sh prints it (function or Cloud Run URL).
  KEY    An access key, sent as the x-goog-api-key header (never in the URL, so it stays out
         of request logs). Pass "" to send none (an --iam-only deployment).
  MODEL  The model to ask (default: qwen-turbo).

Environment:
  SMOKE_ID_TOKEN  Identity token for an IAM-private endpoint, sent as Authorization: Bearer;
                  e.g. SMOKE_ID_TOKEN=$(gcloud auth print-identity-token). The Authorization
                  header then belongs to IAM, which is why the key goes in x-goog-api-key.
  SMOKE_TIMEOUT   Seconds allowed per request (default: 120).

Needs curl (7.55 or newer) and python3 (to check the JSON).
EOF
}

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  usage
  exit 0
fi
if (($# < 2 || $# > 3)); then
  usage >&2
  exit 2
fi
url=${1%/}
key=$2
model=${3:-qwen-turbo}
id_token=${SMOKE_ID_TOKEN:-}
max_time=${SMOKE_TIMEOUT:-120}

fail_usage() {
  printf 'smoke.sh: error: %s\n' "$*" >&2
  exit 2
}
[[ $url =~ ^https?://[^[:space:]]+$ ]] || fail_usage "URL must be an http(s) URL, got '$url'"
[[ $key != *[[:cntrl:]]* && $id_token != *[[:cntrl:]]* ]] ||
  fail_usage "KEY and SMOKE_ID_TOKEN must not contain control characters"
[[ $model =~ ^[A-Za-z0-9._/-]+$ ]] || fail_usage "MODEL must be a plain model name, got '$model'"
[[ $max_time =~ ^[1-9][0-9]*$ ]] || fail_usage "SMOKE_TIMEOUT must be a whole number of seconds"
for tool in curl python3; do
  command -v "$tool" >/dev/null 2>&1 || fail_usage "$tool is not on PATH"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Secrets go to curl through a file (-H @file), not argv, so they never show up in `ps`.
umask 077
{
  printf 'Content-Type: application/json\n'
  [[ -z $key ]] || printf 'x-goog-api-key: %s\n' "$key"
  [[ -z $id_token ]] || printf 'Authorization: Bearer %s\n' "$id_token"
} >"$work/headers"

# The JSON checks, in one place: `check.py KIND STATUS CONTENT_TYPE BODY_FILE` prints a
# one-line summary and exits 0 when the answer is what a Gemini client expects.
cat >"$work/check.py" <<'PY'
import json
import sys

kind, status, content_type, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
raw = open(path, "rb").read().decode("utf-8", "replace")


def done(ok, message):
    print(message.replace("\n", " ")[:300])
    sys.exit(0 if ok else 1)


def text_of(chunk):
    parts = ((chunk.get("candidates") or [{}])[0].get("content") or {}).get("parts") or []
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


def error_of(doc):
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, dict):
        return f'{error.get("code")} {error.get("status")}: {error.get("message")}'
    return None


if kind == "invalid":
    try:
        doc = json.loads(raw)
    except ValueError:
        done(False, f"HTTP {status}, body is not JSON: {raw!r}")
    error = doc.get("error") if isinstance(doc, dict) else None
    if status == 400 and isinstance(error, dict) and error.get("code") == 400 \
            and error.get("status") == "INVALID_ARGUMENT" and error.get("message"):
        done(True, f"HTTP 400 INVALID_ARGUMENT: {error['message']}")
    done(False, f"expected HTTP 400 with error.status INVALID_ARGUMENT, got HTTP {status}: {raw!r}")

if status != 200:
    done(False, f"HTTP {status}: {raw!r}")

if kind == "generate":
    try:
        doc = json.loads(raw)
    except ValueError:
        done(False, f"HTTP 200 but the body is not JSON: {raw!r}")
    if error_of(doc):
        done(False, f"HTTP 200 with an error: {error_of(doc)}")
    if not isinstance(doc, dict) or not isinstance(doc.get("candidates"), list) or not doc["candidates"]:
        done(False, f"HTTP 200 without candidates: {raw!r}")
    done(True, f'HTTP 200, text {text_of(doc)[:60]!r}')

if kind == "stream":
    if not content_type.lower().startswith("text/event-stream"):
        done(False, f"HTTP 200 but Content-Type is {content_type!r}, not text/event-stream")
    chunks, text = 0, ""
    # Events end with a blank line; lines may end in CRLF.
    for event in raw.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:"))
        if not data:
            continue
        try:
            chunk = json.loads(data)
        except ValueError:
            done(False, f"event {chunks + 1} is not JSON: {data!r}")
        if error_of(chunk):
            done(False, f"error in the stream after {chunks} chunks: {error_of(chunk)}")
        if not isinstance(chunk, dict) or not isinstance(chunk.get("candidates"), list):
            done(False, f"event {chunks + 1} has no candidates: {data!r}")
        chunks += 1
        text += text_of(chunk)
    if not chunks:
        done(False, f"HTTP 200 but no data: events: {raw!r}")
    done(True, f"HTTP 200, {chunks} chunks, text {text[:60]!r}")

done(False, f"unknown check {kind}")
PY

failures=0

# check NAME KIND PATH_AND_QUERY JSON_BODY
check() {
  local name=$1 kind=$2 target=$3 body=$4 meta status content_type detail
  printf '%s' "$body" >"$work/request.json"
  : >"$work/response"
  if meta=$(curl --silent --show-error --no-buffer --max-time "$max_time" \
    --request POST --header @"$work/headers" --data-binary @"$work/request.json" \
    --output "$work/response" --write-out '%{http_code} %{content_type}' \
    "$url$target" 2>"$work/curl.err"); then
    status=${meta%% *}
    content_type=${meta#* }
    if detail=$(python3 "$work/check.py" "$kind" "$status" "$content_type" "$work/response"); then
      printf 'PASS %s: %s\n' "$name" "$detail"
      return 0
    fi
  else
    detail="request failed: $(tr '\n' ' ' <"$work/curl.err")"
  fi
  printf 'FAIL %s: %s\n' "$name" "$detail"
  failures=$((failures + 1))
}

prompt='{"contents":[{"role":"user","parts":[{"text":"Reply with the single word: pong"}]}]'

check generateContent generate "/v1beta/models/$model:generateContent" "$prompt}"
check streamGenerateContent stream "/v1beta/models/$model:streamGenerateContent?alt=sse" "$prompt}"
check invalid-request invalid "/v1beta/models/$model:generateContent" \
  "$prompt,\"generationConfig\":{\"temperature\":5}}"

if ((failures)); then
  printf '%d of 3 checks failed against %s\n' "$failures" "$url"
  exit 1
fi
printf 'All 3 checks passed against %s\n' "$url"
