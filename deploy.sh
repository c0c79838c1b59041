#!/usr/bin/env bash
# Deploy the Gemini-compatible function to a team's private endpoint, in one command:
# Cloud Functions 2nd gen by default, Cloud Run with --run. See --help.
#
# Written for bash 3.2 too (macOS): no associative arrays, and empty arrays are expanded
# as ${a[@]+"${a[@]}"} because `set -u` rejects "${a[@]}" for an empty array before bash 4.4.
set -euo pipefail

readonly PROG=deploy.sh
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly REPO_DIR

# Defaults, each shown by --help.
platform=functions
name=gemini
project=""
region=us-central1
runtime=python311
runtime_given=false
timeout=3600
concurrency=16
memory=512Mi
cpu=1
min_instances=0
max_instances=5
service_account=""
upstream_base_url=""
upstream_timeout=""
upstream_retries=""
max_request_bytes=""
client_body_timeout=""
max_upstream_response_bytes=""
model_aliases=""
allowed_models=""
cors_origins=""
storage_bucket=""
upstream_key_secret=""
access_keys_secret=""
public=false
iam_only=false
open_ack=false
dry_run=false
extra_env=()
extra_gcloud=()

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [--run] [OPTIONS] [-- EXTRA_GCLOUD_ARGS...]

Deploys this repository's function (main.py, target "gemini") with one gcloud command (after
those for its bucket, with --storage-bucket):
  default  Cloud Functions 2nd gen:  gcloud functions deploy NAME --gen2 --trigger-http ...
  --run    Cloud Run:                gcloud run deploy NAME --source=REPO ...
           (gcloud builds the repository's Dockerfile with Cloud Build.)
The endpoint is private by default: only callers with roles/run.invoker (an identity
token) get through Cloud IAM. Every deploy sets the whole configuration: an option left
out goes back to its default, except secrets, which stay as they were unless given.

Where and what:
  --run                      Deploy to Cloud Run instead of Cloud Functions.
  --name NAME                Function or service name (default: gemini).
  --project ID               Google Cloud project (default: `gcloud config get-value project`;
                             fails if neither is set).
  --region REGION            Region (default: us-central1).
  --runtime RUNTIME          Cloud Functions only: python311 or python312 (default: python311).
                             Cloud Run uses the Dockerfile's Python.
  --service-account EMAIL    Runtime service account (default: the project's default compute
                             service account, PROJECT_NUMBER-compute@developer.gserviceaccount.com).
                             It needs roles/secretmanager.secretAccessor on the secrets below;
                             --storage-bucket grants it its bucket.

Capacity (streams hold a request open for minutes, hence the long timeout):
  --timeout SECONDS          Request timeout, 1-3600, e.g. 3600 or 3600s (default: 3600, the
                             maximum on both platforms).
  --concurrency N            Requests per instance, 1-1000 (default: 16). Also sets the THREADS
                             env var to N: functions-framework runs one gunicorn worker with
                             THREADS threads, so each concurrent request gets a thread.
  --memory SIZE              Memory per instance, e.g. 512Mi, 1Gi (default: 512Mi). It must hold
                             the requests in flight: 512Mi fits the default concurrency 16 with
                             MAX_REQUEST_BYTES 20 MiB; see README's sizing rule. Warns when it
                             is below about 160Mi + REQUEST_MEMORY_BYTES (256 MiB, or
                             5 x --max-request-bytes if more), + 40Mi with a bucket (the Cloud
                             Storage library, loaded on first use).
  --cpu N                    vCPUs per instance, e.g. 1, 2 (default: 1; at least 1 when
                             concurrency > 1).
  --min-instances N          Instances kept warm (default: 0: scale to zero, pay per request,
                             cold start on the first request after idling).
  --max-instances N          Upper bound on instances, caps the cost (default: 5).

EOF
  # The function's defaults, from its own gemini_compat/config.py.
  cat <<EOF
Function settings (environment variables the function reads, checked with the function's own
gemini_compat/config.py before anything is built):
  --upstream-base-url URL    UPSTREAM_BASE_URL (default: unset, the function's own:
                             $(function_config default upstream_base_url)).
  --upstream-timeout SECS    UPSTREAM_TIMEOUT, for connecting and for each read (default: unset,
                             the function's own: $(function_config default upstream_timeout)).
  --upstream-retries N       UPSTREAM_RETRIES (default: unset, the function's own: $(function_config default upstream_retries)).
  --max-request-bytes N      MAX_REQUEST_BYTES (default: unset, the function's own: $(function_config default max_request_bytes)).
  --client-body-timeout SECS CLIENT_BODY_TIMEOUT, the time a caller has to send its whole request
                             body (default: unset, the function's own: $(function_config default client_body_timeout)).
  --max-upstream-response-bytes N
                             MAX_UPSTREAM_RESPONSE_BYTES, at least 1024: the most the function
                             reads of one upstream answer (default: unset, the function's own:
                             $(function_config default max_upstream_response_bytes)).
EOF
  cat <<'EOF'
  --model-aliases LIST       MODEL_ALIASES, e.g. gemini-2.5-flash=qwen-turbo,gemini-2.5-pro=qwen-max
                             (default: unset). Commas are passed through safely.
  --allowed-models LIST      ALLOWED_MODELS, comma-separated upstream model IDs (default: unset,
                             any model).
  --cors-origins LIST        CORS_ORIGINS, comma-separated browser origins (default: unset, no
                             CORS headers).
  --env KEY=VALUE            Any other environment variable; repeatable. The files and cached
                             contents settings too (FILE_TTL, FILES_SCOPE, PUBLIC_BASE_URL, ...;
                             see README), checked like the rest.
  (Always set: THREADS, see --concurrency, and GOOGLE_CLOUD_PROJECT, for log trace links.)

Files and cached contents (the upload, files and cachedContents routes) keep their state in
storage every instance shares. Without it, on Cloud Run and Cloud Functions alike, those routes
answer 501 UNIMPLEMENTED and everything else works as before.
  --storage-bucket NAME      Or gs://NAME/PREFIX. Before the deploy: creates the bucket if absent
                             (in --region and --project, uniform bucket-level access, public
                             access prevention); sets its lifecycle rules, replacing any it has,
                             to delete expired objects (under PREFIX/ if given) a day or more
                             after they expire; enforces public access prevention; grants the
                             runtime service account roles/storage.objectUser on that bucket
                             only. Then sets STORAGE_BUCKET=gs://NAME[/PREFIX]. Running it
                             takes roles/storage.admin on the project (on the bucket alone
                             once it exists).
  Or, left to you: --env STORAGE_BUCKET=gs://NAME[/PREFIX] names a bucket you manage (deploy.sh
  then creates, changes and grants nothing: give the runtime service account
  roles/storage.objectUser on it, and lifecycle rules like README's); or --env STORAGE_DIR=PATH,
  a folder on a volume every instance mounts (Cloud Run only, after --: --add-volume and
  --add-volume-mount; an NFS share such as Filestore, with README's caveats).

Secrets (Secret Manager; only the secret's name is on the command line, never its value;
given either, the deploy replaces all the function's secrets):
  --upstream-key-secret NAME UPSTREAM_API_KEY from secret NAME (version: latest, or NAME:VERSION).
                             Team mode: the function calls the upstream with this one key
                             instead of each caller's own.
  --access-keys-secret NAME  ACCESS_KEYS from secret NAME: the comma-separated keys team
                             members send as x-goog-api-key (or their sha256:HEX digests).
                             Needs --upstream-key-secret. The function refuses every request
                             in team mode without it, unless --iam-only.

Who can call it:
  (default)                  Private: --no-allow-unauthenticated; callers need an identity
                             token with roles/run.invoker, and an access key if configured.
  --iam-only                 Private, and IAM is the only gate: sets ALLOW_UNAUTHENTICATED=true
                             so team mode works without --access-keys-secret.
  --public                   --allow-unauthenticated: anyone on the internet can reach it.
                             Requires --access-keys-secret, because without access keys the
                             endpoint is an open proxy that spends your upstream key (or, without
                             one, your compute) on anyone who finds the URL...
  --i-know-its-open          ...unless you pass this too (sets ALLOW_UNAUTHENTICATED=true).

Running:
  --dry-run                  Print the gcloud commands, shell-quoted for copy and paste, and do
                             not run them (with --storage-bucket, a short bash script). Needs no gcloud unless --project is left out (python3,
                             to check the settings, always). Honoured after -- too (and then not
                             passed to gcloud).
  -h, --help                 This help.
  -- ARGS...                 Pass the remaining arguments to gcloud (e.g. --quiet), checked first:
                             flags that would undo what this script sets and guards are refused
                             (--allow-unauthenticated: use --public; --set-env-vars and the like:
                             use --env; --set-secrets: use the secret options; --memory and the
                             other options above: use this script's own).

Exit status: 0 on success, 2 for a bad option or value (nothing is run), otherwise gcloud's.

Examples:
  ./deploy.sh --project my-proj --upstream-key-secret gemini-upstream-key \
      --access-keys-secret gemini-access-keys
  ./deploy.sh --run --project my-proj --region europe-west1 --concurrency 32 \
      --model-aliases gemini-2.5-flash=qwen-turbo,gemini-2.5-pro=qwen-max --dry-run
EOF
}

die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 2
}

warn() {
  printf '%s: warning: %s\n' "$PROG" "$*" >&2
}

# Shell-quote one word for --dry-run output: bare when it is plainly safe, else single quotes;
# but double quotes when it is safe apart from $project_number_ref, set when --dry-run prints a
# line that sets PROJECT_NUMBER: the shell that runs the printed lines must expand it.
project_number_ref=""
quote() {
  local safe='^[A-Za-z0-9_./:=@,+%-]*$'
  if [[ -n $1 && $1 =~ $safe ]]; then
    printf '%s' "$1"
  elif [[ -n $project_number_ref && $1 == *"$project_number_ref"* && ${1//"$project_number_ref"/} =~ $safe ]]; then
    printf '"%s"' "$1"
  else
    local q="'\\''"
    printf "'%s'" "${1//\'/$q}"
  fi
}

print_command() {
  local line="" word
  for word in "$@"; do
    line+="${line:+ }$(quote "$word")"
  done
  printf '%s\n' "$line"
}

# Options that take a value; the rest are switches.
takes_value() {
  case $1 in
    --name | --project | --region | --runtime | --service-account | --timeout | \
      --concurrency | --memory | --cpu | --min-instances | --max-instances | \
      --upstream-base-url | --upstream-timeout | --upstream-retries | --max-request-bytes | \
      --client-body-timeout | --max-upstream-response-bytes | \
      --model-aliases | --allowed-models | --cors-origins | --env | --storage-bucket | \
      --upstream-key-secret | --access-keys-secret) return 0 ;;
    *) return 1 ;;
  esac
}

missing_value() {
  case $1 in
    --upstream-key-secret | --access-keys-secret)
      die "$1 needs a Secret Manager secret name, e.g. $1 my-secret" ;;
    *) die "$1 needs a value (see --help)" ;;
  esac
}

# A whole number (no sign, no leading zero: bash arithmetic would read 010 as octal).
whole_number() {
  local option=$1 value=$2 min=$3 max=$4
  [[ $value =~ ^(0|[1-9][0-9]{0,8})$ ]] || die "$option must be a whole number, got '$value'"
  ((value >= min && value <= max)) || die "$option must be between $min and $max, got $value"
}

# The function's own configuration code, gemini_compat/config.py, is the one source of its settings'
# rules and defaults. It imports only the standard library, and -I -S keep site-packages and
# PYTHONPATH out, so nothing needs installing.
#   function_config default FIELD          Settings.FIELD's default, as --help shows it.
#   function_config check KEY=VALUE...     The MiB REQUEST_MEMORY_BYTES comes to, BYTE_COST, and the
#                                          bucket[/prefix] STORAGE_BUCKET names if any; or, exit
#                                          status 3, the variable refused and the function's reason.
#   function_config lifecycle KEY=VALUE... The bucket's lifecycle rules, as `gcloud storage buckets
#                                          update --lifecycle-file` reads them.
function_config() {
  python3 -I -S -c '
import json
import math
import sys
sys.path.insert(0, sys.argv[1])
from gemini_compat import config

command, *args = sys.argv[2:]
if command == "default":
    value = getattr(config.Settings, args[0])
    if isinstance(value, float):
        value = format(value, "g")
    elif isinstance(value, int) and value >= 1 << 20 and value % (1 << 20) == 0:
        value = f"{value >> 20} MiB"
    print(value)
else:
    try:
        settings = config.Settings.from_env(dict(pair.split("=", 1) for pair in args))
    except config.ConfigError as error:
        print(error.variable, error)
        sys.exit(3)
    if command == "check":
        print(-(-settings.request_memory_bytes // (1 << 20)), config.BYTE_COST, settings.storage_bucket)
    else:
        # The function checks expiry on every read; these rules collect what expired, a day or more
        # after (lifecycle rules count whole days and run asynchronously). Ages count from creation.
        prefix = settings.storage_bucket.partition("/")[2]

        def delete(folder, **condition):
            return {"action": {"type": "Delete"},
                    "condition": dict(condition, matchesPrefix=[f"{prefix}/{folder}" if prefix else folder])}

        def days_after(seconds):
            return math.ceil(seconds / 86400) + 1

        rules = [
            delete("files/", age=days_after(settings.file_ttl)),
            delete("uploads/", age=7),  # a resumable upload session lives a week
            # A cache expires at most CACHE_MAX_TTL after its creation (an update cannot extend it further).
            delete("cachedContents/", age=days_after(settings.cache_max_ttl)),
            delete("cacheFiles/", age=days_after(settings.cache_max_ttl)),
        ]
        print("{\"rule\": [\n  " + ",\n  ".join(json.dumps(rule) for rule in rules) + "\n]}")
' "$REPO_DIR" "$@"
}

# The option that sets a variable of the function's, for those that have their own.
option_for() {
  case $1 in
    UPSTREAM_BASE_URL | UPSTREAM_TIMEOUT | UPSTREAM_RETRIES | MAX_REQUEST_BYTES | MODEL_ALIASES | \
      ALLOWED_MODELS | CORS_ORIGINS | CLIENT_BODY_TIMEOUT | MAX_UPSTREAM_RESPONSE_BYTES)
      printf -- '--%s' "$(printf '%s' "$1" | tr '[:upper:]_' '[:lower:]-')" ;;
    *) return 1 ;;
  esac
}

no_control_chars() {
  [[ $2 != *[[:cntrl:]]* ]] || die "$1 must not contain newlines or control characters"
}

secret_ref() {
  local option=$1 value=$2
  [[ $value =~ ^[A-Za-z0-9_-]{1,255}(:(latest|[1-9][0-9]*))?$ ]] ||
    die "$option needs a Secret Manager secret name (letters, digits, - and _, optionally :VERSION), got '$value'"
  # Unversioned means latest: new instances pick up a new version without a redeploy.
  if [[ $value == *:* ]]; then
    printf '%s' "$value"
  else
    printf '%s:latest' "$value"
  fi
}

while (($#)); do
  arg=$1
  shift
  value=""
  inline=false
  if [[ $arg == --*=* ]]; then
    value=${arg#*=}
    arg=${arg%%=*}
    inline=true
  fi
  if takes_value "$arg"; then
    if ! $inline; then
      # An option in value position means the value was forgotten: say so, do not swallow it.
      if (($# == 0)) || [[ $1 == --* ]]; then
        missing_value "$arg"
      fi
      value=$1
      shift
    fi
    [[ -n $value ]] || missing_value "$arg"
    no_control_chars "$arg" "$value"
  elif $inline; then
    case $arg in
      --run | --public | --iam-only | --i-know-its-open | --dry-run | --help)
        die "$arg takes no value" ;;
      *) die "unknown option '$arg' (see --help)" ;;
    esac
  fi
  case $arg in
    -h | --help) usage; exit 0 ;;
    --run) platform=run ;;
    --name) name=$value ;;
    --project) project=$value ;;
    --region) region=$value ;;
    --runtime) runtime=$value; runtime_given=true ;;
    --service-account) service_account=$value ;;
    --timeout) timeout=${value%s} ;;
    --concurrency) concurrency=$value ;;
    --memory) memory=$value ;;
    --cpu) cpu=$value ;;
    --min-instances) min_instances=$value ;;
    --max-instances) max_instances=$value ;;
    --upstream-base-url) upstream_base_url=$value ;;
    --upstream-timeout) upstream_timeout=$value ;;
    --upstream-retries) upstream_retries=$value ;;
    --max-request-bytes) max_request_bytes=$value ;;
    --client-body-timeout) client_body_timeout=$value ;;
    --max-upstream-response-bytes) max_upstream_response_bytes=$value ;;
    --model-aliases) model_aliases=$value ;;
    --allowed-models) allowed_models=$value ;;
    --cors-origins) cors_origins=$value ;;
    --env) extra_env+=("$value") ;;
    --storage-bucket) storage_bucket=$value ;;
    --upstream-key-secret) upstream_key_secret=$(secret_ref "$arg" "$value") || exit ;;
    --access-keys-secret) access_keys_secret=$(secret_ref "$arg" "$value") || exit ;;
    --public) public=true ;;
    --iam-only) iam_only=true ;;
    --i-know-its-open) open_ack=true ;;
    --dry-run) dry_run=true ;;
    --) extra_gcloud=("$@"); break ;;
    *) die "unknown option '$arg' (see --help)" ;;
  esac
done

# --- Checks on the options themselves, before anything touches gcloud. ---

# After --: gcloud's arguments, but checked, because gcloud would let them undo what this script
# sets and guards. gcloud takes no abbreviations and no =VALUE on its switches, so the flag name
# (the word up to any '=') is all it could mean. --dry-run is this script's, wherever it is.
gcloud_args=()
account_after_dashes=""  # --service-account's value after --, which --storage-bucket grants the bucket
account_is_next=false
for word in ${extra_gcloud[@]+"${extra_gcloud[@]}"}; do
  if $account_is_next; then
    account_after_dashes=$word
    account_is_next=false
  fi
  flag_name=${word%%=*}
  case $flag_name in
    --dry-run)
      [[ $word == --dry-run ]] || die "--dry-run takes no value"
      dry_run=true
      continue ;;
    --allow-unauthenticated | --no-invoker-iam-check)
      die "$flag_name after -- would open the endpoint to anyone without deploy.sh's open-proxy check; use --public instead (it needs --access-keys-secret, or --i-know-its-open)" ;;
    --no-allow-unauthenticated)
      die "--no-allow-unauthenticated after -- is deploy.sh's to set: the endpoint is private unless --public" ;;
    --set-env-vars | --update-env-vars | --remove-env-vars | --clear-env-vars | --env-vars-file)
      die "$flag_name after -- would replace the environment deploy.sh sets and checks; use --env KEY=VALUE, or the named option (see --help)" ;;
    --set-secrets | --update-secrets | --remove-secrets | --clear-secrets)
      die "$flag_name after -- would replace the secrets deploy.sh sets; use --upstream-key-secret and --access-keys-secret" ;;
    --timeout | --concurrency | --memory | --cpu | --min-instances | --max-instances | \
      --region | --project | --runtime)
      die "$flag_name after -- would override deploy.sh's own; pass deploy.sh's $flag_name before --" ;;
    --service-account)
      [[ -z $service_account ]] ||
        die "--service-account is given twice, before and after --; pass it once"
      if [[ $word == *=* ]]; then
        account_after_dashes=${word#*=}
      else
        account_is_next=true
      fi ;;
    --source | --entry-point | --image | --function | --command | --args)
      die "$flag_name after -- would change what runs; deploy.sh deploys this repository's function as it is" ;;
    --flags-file)
      die "--flags-file after -- would hide gcloud flags from deploy.sh's checks; put them on the command line" ;;
  esac
  gcloud_args+=("$word")
done

[[ $name =~ ^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$ ]] ||
  die "--name must be 1-49 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen, got '$name'"
[[ $region =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "--region must look like us-central1, got '$region'"
case $runtime in
  python311 | python312) ;;
  *) die "--runtime must be python311 or python312, got '$runtime'" ;;
esac
if [[ $platform == run ]] && $runtime_given; then
  die "--runtime applies to Cloud Functions only; with --run the Dockerfile's base image sets the Python version"
fi
[[ -z $service_account || $service_account =~ ^[^@[:space:]]+@[^@[:space:]]+$ ]] ||
  die "--service-account must be a service account email, got '$service_account'"
# The account the function runs as, granted its bucket: given before or after --, else (found
# later, from the project's number) the project's default compute service account.
runtime_account=${service_account:-$account_after_dashes}
if [[ -n $storage_bucket && -n $runtime_account && ! $runtime_account =~ ^[^@[:space:]]+@[^@[:space:]]+$ ]]; then
  die "--storage-bucket grants the bucket to the runtime service account, so --service-account must be its email, got '$runtime_account'"
fi

whole_number --timeout "$timeout" 1 3600
whole_number --concurrency "$concurrency" 1 1000
whole_number --min-instances "$min_instances" 0 1000
whole_number --max-instances "$max_instances" 1 1000
((min_instances <= max_instances)) ||
  die "--min-instances ($min_instances) must not exceed --max-instances ($max_instances)"
[[ $memory =~ ^[1-9][0-9]{0,5}(Mi|Gi)$ ]] || die "--memory must look like 256Mi or 1Gi, got '$memory'"
[[ $cpu =~ ^([1-9][0-9]?|0?\.[0-9]+|[1-9]\.[0-9]+)$ ]] || die "--cpu must be a number of vCPUs like 1 or 2, got '$cpu'"
# Both platforms refuse concurrency > 1 below one vCPU; say so before a slow failed build.
if [[ $cpu == *.* && ${cpu%%.*} =~ ^0?$ ]] && ((concurrency > 1)); then
  die "--cpu below 1 allows only --concurrency 1 (got --cpu $cpu --concurrency $concurrency)"
fi

# The key, and every prompt, travel to the upstream in clear text over http:// (fine on loopback).
if [[ $upstream_base_url == http://* ]]; then
  upstream_host=${upstream_base_url#http://}
  upstream_host=${upstream_host%%[/?#]*}
  upstream_host=${upstream_host##*@}
  if [[ $upstream_host == \[* ]]; then
    upstream_host=${upstream_host%%]*}]
  else
    upstream_host=${upstream_host%%:*}
  fi
  upstream_host=$(printf '%s' "$upstream_host" | tr '[:upper:]' '[:lower:]')
  loopback=false
  case $upstream_host in
    localhost | '[::1]') loopback=true ;;
  esac
  [[ ! $upstream_host =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || loopback=true
  $loopback ||
    warn "--upstream-base-url is http://, so the upstream key and every request travel unencrypted to $upstream_host; use https:// unless that network is yours alone"
fi

# --env: anything the named options do not already cover, and never a secret value.
for item in ${extra_env[@]+"${extra_env[@]}"}; do
  key=${item%%=*}
  [[ $item == *=* && $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "--env needs KEY=VALUE, got '$item'"
  case $key in
    UPSTREAM_API_KEY) die "UPSTREAM_API_KEY must come from Secret Manager: use --upstream-key-secret" ;;
    ACCESS_KEYS) die "ACCESS_KEYS must come from Secret Manager: use --access-keys-secret" ;;
    THREADS) die "THREADS follows --concurrency; set that instead" ;;
    GOOGLE_CLOUD_PROJECT | GCP_PROJECT) die "$key is set from --project" ;;
    ALLOW_UNAUTHENTICATED) die "ALLOW_UNAUTHENTICATED is set by --iam-only or --public --i-know-its-open" ;;
    PORT | K_SERVICE | K_REVISION | K_CONFIGURATION)
      die "$key is set by the platform and cannot be overridden" ;;
    STORAGE_BUCKET | STORAGE_DIR)
      [[ -z $storage_bucket ]] ||
        die "--storage-bucket sets STORAGE_BUCKET, and the function keeps its files in one place: drop --env $key, or drop --storage-bucket to use a bucket or folder you manage yourself" ;;
    *) if option=$(option_for "$key"); then die "set $key with $option"; fi ;;
  esac
done

# Who may call: private unless --public, and never an open proxy by accident.
if $iam_only && $public; then
  die "--iam-only keeps the endpoint private; it cannot be combined with --public"
fi
if $iam_only && [[ -n $access_keys_secret ]]; then
  die "--iam-only means no access keys; drop it or drop --access-keys-secret"
fi
if $open_ack && ! $public; then
  die "--i-know-its-open only makes sense with --public"
fi
if $open_ack && [[ -n $access_keys_secret ]]; then
  die "--i-know-its-open is for a public endpoint without access keys; drop it, --access-keys-secret already guards the endpoint"
fi
if [[ -n $access_keys_secret && -z $upstream_key_secret ]]; then
  # --set-secrets replaces every secret, and the function refuses to start with ACCESS_KEYS alone.
  die "--access-keys-secret needs --upstream-key-secret too: access keys guard the team's upstream key, and the function will not start with ACCESS_KEYS but no UPSTREAM_API_KEY"
fi
if $public && [[ -z $access_keys_secret ]] && ! $open_ack; then
  die "--public without --access-keys-secret makes an open proxy: anyone who finds the URL could use it at your expense (your upstream key in team mode, your compute otherwise). Pass --upstream-key-secret and --access-keys-secret, or --i-know-its-open if that is really what you want"
fi
allow_unauthenticated=""
if $iam_only || $open_ack; then
  allow_unauthenticated=true
fi
if [[ -n $upstream_key_secret && -z $access_keys_secret && -z $allow_unauthenticated ]]; then
  warn "--upstream-key-secret without --access-keys-secret: in team mode the function requires ACCESS_KEYS unless ALLOW_UNAUTHENTICATED=true, so as given it will refuse to serve. Add --access-keys-secret NAME, or --iam-only if Cloud IAM alone should guard it."
fi
if [[ $platform == run && ! -f $REPO_DIR/Dockerfile ]]; then
  die "--run builds $REPO_DIR/Dockerfile, which is missing"
fi

# --- The function's settings, checked by the function's own code. ---

# A setting left out is not passed: the function's own default applies.
env_pairs=()
[[ -z $upstream_base_url ]] || env_pairs+=("UPSTREAM_BASE_URL=$upstream_base_url")
[[ -z $upstream_timeout ]] || env_pairs+=("UPSTREAM_TIMEOUT=$upstream_timeout")
[[ -z $upstream_retries ]] || env_pairs+=("UPSTREAM_RETRIES=$upstream_retries")
[[ -z $max_request_bytes ]] || env_pairs+=("MAX_REQUEST_BYTES=$max_request_bytes")
[[ -z $client_body_timeout ]] || env_pairs+=("CLIENT_BODY_TIMEOUT=$client_body_timeout")
[[ -z $max_upstream_response_bytes ]] || env_pairs+=("MAX_UPSTREAM_RESPONSE_BYTES=$max_upstream_response_bytes")
[[ -z $model_aliases ]] || env_pairs+=("MODEL_ALIASES=$model_aliases")
[[ -z $allowed_models ]] || env_pairs+=("ALLOWED_MODELS=$allowed_models")
[[ -z $cors_origins ]] || env_pairs+=("CORS_ORIGINS=$cors_origins")
[[ -z $allow_unauthenticated ]] || env_pairs+=("ALLOW_UNAUTHENTICATED=$allow_unauthenticated")
env_pairs+=("THREADS=$concurrency")

# A value the function would refuse at start fails here, not after a slow build.
command -v python3 >/dev/null 2>&1 ||
  die "python3 is not on PATH: deploy.sh checks the function's settings with the function's own gemini_compat/config.py (Python 3.8 or later, no packages needed)"
function_env=("${env_pairs[@]}")
[[ -z $storage_bucket ]] || function_env+=("STORAGE_BUCKET=$storage_bucket")
function_env+=(${extra_env[@]+"${extra_env[@]}"})
check_status=0
checked=$(function_config check "${function_env[@]}" 2>&1) || check_status=$?
if ((check_status == 3)); then
  read -r variable reason <<<"$checked"
  if [[ $variable == STORAGE_BUCKET && -n $storage_bucket ]]; then
    option=--storage-bucket
  else
    option=$(option_for "$variable") || option=--env
  fi
  die "$option: $reason"
elif ((check_status != 0)); then
  die "could not check the function's settings with $(command -v python3) (Python 3.8 or later needed): ${checked##*$'\n'}"
fi
read -r request_mib byte_cost bucket_path <<<"$checked"
if [[ -n $storage_bucket ]]; then
  # As the function reads it: gs://bucket or gs://bucket/prefix, no trailing slash.
  env_pairs+=("STORAGE_BUCKET=gs://$bucket_path")
  lifecycle_json=$(function_config lifecycle "${function_env[@]}")
fi

# Memory must hold the worker (about 160 MiB, with its threads' streams; 40 MiB more once it has
# loaded google-cloud-storage, on its first use of a bucket) and REQUEST_MEMORY_BYTES, the
# function's budget for the requests it translates at once (stored files it sends upstream
# included). README's sizing rule.
case $memory in
  *Gi) memory_mib=$((${memory%Gi} * 1024)) ;;
  *) memory_mib=${memory%Mi} ;;
esac
worker_mib=160
worker_note=""
if [[ -n $bucket_path ]]; then
  worker_mib=200
  worker_note=" (with the Cloud Storage library)"
fi
needed_mib=$((worker_mib + request_mib))
if ((memory_mib < needed_mib)); then
  warn "--memory $memory is below about ${needed_mib}Mi: ${worker_mib}Mi for the worker$worker_note and ${request_mib}Mi for the requests in flight (REQUEST_MEMORY_BYTES, at least $byte_cost x MAX_REQUEST_BYTES); raise --memory or lower --max-request-bytes"
fi

# --- gcloud and the project. ---

have_gcloud=false
if command -v gcloud >/dev/null 2>&1; then
  have_gcloud=true
elif ! $dry_run; then
  die "gcloud is not on PATH; install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install), or use --dry-run to only print the command"
fi
if [[ -z $project ]] && $have_gcloud; then
  project=$(gcloud config get-value project 2>/dev/null || true)
  if [[ $project == "(unset)" ]]; then
    project=""
  fi
fi
if [[ -z $project ]]; then
  if $dry_run; then
    project=PROJECT_ID
    warn "no project given and none in gcloud config: printing PROJECT_ID as a placeholder"
  else
    die "no project: pass --project ID, or set a default with: gcloud config set project ID"
  fi
elif ! [[ $project =~ ^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]]; then
  die "the project must be a project ID like my-project-123, got '$project'"
fi

# --- The environment variables, as one gcloud flag. ---

# The function's settings, checked above, and:
# Neither platform sets it for current runtimes; the function needs it to write log entries'
# trace as projects/PROJECT/traces/ID, which is what links them to Cloud Trace and each other.
env_pairs+=("GOOGLE_CLOUD_PROJECT=$project")
env_pairs+=(${extra_env[@]+"${extra_env[@]}"})

# gcloud splits --set-env-vars on commas, so a value with commas (MODEL_ALIASES, lists) needs
# its alternate-delimiter syntax `^DELIM^KEY=a,bDELIMKEY2=c` (see `gcloud topic escaping`), with
# a delimiter found in no KEY=VALUE pair. Unlike a temporary --env-vars-file, this keeps the
# printed command self-contained.
delimiter=","
for pair in "${env_pairs[@]}"; do
  [[ $pair != *,* ]] || delimiter=""
done
if [[ -z $delimiter ]]; then
  for candidate in '@' '|' ';' '~' '#' '@@@'; do
    clash=false
    for pair in "${env_pairs[@]}"; do
      [[ $pair != *"$candidate"* ]] || clash=true
    done
    if ! $clash; then
      delimiter=$candidate
      break
    fi
  done
  [[ -n $delimiter ]] || die "environment values use every delimiter gcloud could split them on (, @ | ; ~ #)"
fi
env_flag="--set-env-vars="
[[ $delimiter == "," ]] || env_flag+="^$delimiter^"
separator=""
for pair in "${env_pairs[@]}"; do
  env_flag+="$separator$pair"
  separator=$delimiter
done

secrets=()
[[ -z $upstream_key_secret ]] || secrets+=("UPSTREAM_API_KEY=$upstream_key_secret")
[[ -z $access_keys_secret ]] || secrets+=("ACCESS_KEYS=$access_keys_secret")

# --- The commands: each printed (--dry-run), or shown and run, in order; the first to fail stops. ---

step() {
  if $dry_run; then
    print_command "$@"
    return
  fi
  printf '+ %s\n' "$(print_command "$@")" >&2
  local status=0
  "$@" || status=$?
  if ((status != 0)); then
    printf '%s: gcloud failed (exit %d), so nothing after it was run. Every step is safe to repeat: run deploy.sh again once this is fixed.\n' "$PROG" "$status" >&2
    exit "$status"
  fi
}

# --- The bucket (--storage-bucket), before the function that needs it. ---

deploy_account=$service_account
if [[ -n $storage_bucket ]]; then
  bucket_url=gs://${bucket_path%%/*}
  if [[ -z $runtime_account ]]; then
    # The project's default compute service account, which both platforms run as by default, named
    # after the project's number. The deploy names it too, so the account granted is the one that runs.
    number_lookup=(gcloud projects describe "$project" "--format=value(projectNumber)")
    if $dry_run; then
      printf '%s\n' "PROJECT_NUMBER=\$($(print_command "${number_lookup[@]}"))"
      project_number_ref="\${PROJECT_NUMBER}"
      project_number=$project_number_ref
    else
      project_number=$(step "${number_lookup[@]}") || exit
      [[ $project_number =~ ^[0-9]+$ ]] ||
        die "gcloud gave '$project_number' for the project number of $project; pass --service-account EMAIL instead"
    fi
    runtime_account=$project_number-compute@developer.gserviceaccount.com
    deploy_account=$runtime_account
  fi

  bucket_exists=(gcloud storage buckets describe "$bucket_url" "--format=value(name)")
  bucket_create=(gcloud storage buckets create "$bucket_url" "--project=$project" "--location=$region"
    --uniform-bucket-level-access --public-access-prevention)
  if $dry_run; then
    printf '%s >/dev/null 2>&1 || %s\n' "$(print_command "${bucket_exists[@]}")" "$(print_command "${bucket_create[@]}")"
    lifecycle_file=gemini-storage-lifecycle.json
    printf "cat >%s <<'EOF'\n%s\nEOF\n" "$lifecycle_file" "$lifecycle_json"
  else
    printf '+ %s\n' "$(print_command "${bucket_exists[@]}")" >&2
    if "${bucket_exists[@]}" >/dev/null 2>&1; then
      printf '%s: %s exists: it keeps its location and access settings.\n' "$PROG" "$bucket_url" >&2
    else
      step "${bucket_create[@]}"
    fi
    lifecycle_file=$(mktemp "${TMPDIR:-/tmp}/gemini-storage-lifecycle.XXXXXX")
    trap 'rm -f "$lifecycle_file"' EXIT
    printf '%s\n' "$lifecycle_json" >"$lifecycle_file"
  fi
  # An existing bucket too: its lifecycle rules become these, and nothing in it may be made public.
  step gcloud storage buckets update "$bucket_url" "--lifecycle-file=$lifecycle_file" --public-access-prevention
  # On the bucket, not the project: the function reaches no other bucket through this grant.
  step gcloud storage buckets add-iam-policy-binding "$bucket_url" "--member=serviceAccount:$runtime_account" \
    --role=roles/storage.objectUser
fi

# --- The function. ---

if [[ $platform == functions ]]; then
  cmd=(gcloud functions deploy "$name" --gen2 "--project=$project" "--region=$region"
    "--runtime=$runtime" --entry-point=gemini "--source=$REPO_DIR" --trigger-http)
  describe=(gcloud functions describe "$name" --gen2 "--project=$project" "--region=$region"
    "--format=value(serviceConfig.uri)")
else
  # A Dockerfile is present, so gcloud builds it (buildpacks and --function apply only without one).
  cmd=(gcloud run deploy "$name" "--project=$project" "--region=$region" "--source=$REPO_DIR")
  describe=(gcloud run services describe "$name" "--project=$project" "--region=$region"
    "--format=value(status.url)")
fi
cmd+=("--timeout=${timeout}s" "--concurrency=$concurrency" "--memory=$memory" "--cpu=$cpu"
  "--min-instances=$min_instances" "--max-instances=$max_instances" "$env_flag")
if ((${#secrets[@]})); then
  cmd+=("--set-secrets=$(IFS=,; printf '%s' "${secrets[*]}")")
fi
[[ -z $deploy_account ]] || cmd+=("--service-account=$deploy_account")
if $public; then
  cmd+=(--allow-unauthenticated)
else
  cmd+=(--no-allow-unauthenticated)
fi
cmd+=(${gcloud_args[@]+"${gcloud_args[@]}"})

step "${cmd[@]}"
if $dry_run; then
  exit 0
fi

cat >&2 <<EOF

Deployed. Check it end to end with an access key (and, while private, an identity token):
  URL=\$($(print_command "${describe[@]}"))
  SMOKE_ID_TOKEN=\$(gcloud auth print-identity-token) $(quote "$REPO_DIR/scripts/smoke.sh") "\$URL" "\$ACCESS_KEY"
EOF
