#!/usr/bin/env bash
# The README's two commands on other Pythons than CI's 3.11 (issue 24, part 5): for each version, a fresh
# virtual environment outside the repo with requirements-dev.txt, the app started as the README starts it
# (`python app.py`, on a free port; its page fetched once, then stopped), and the numerics-sensitive tests.
#
#   bash benchmarks/pythons.sh                                  # 3.10.13 and 3.12.1, the default test files
#   bash benchmarks/pythons.sh 3.10.13 3.12.1 -- tests/test_api.py tests/test_train.py
#
# A version is a pyenv version ($PYENV_ROOT/versions/VERSION, else ~/.pyenv) or a path to a python.
# The environments are /tmp/forger-py<VERSION> ($FORGER_PYTHONS_DIR to move them), kept between runs and
# reinstalled only when requirements*.txt change, so a rerun starts at the tests. Every venv installs the
# registry's torch wheels (~several GB each, a few minutes the first time). Logs: <venv>/{install,app,tests}.log.
# Prints one summary line per version (the app check and pytest's own closing line) and exits 1 if any fails.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

versions=()
while (($#)) && [[ $1 != -- ]]; do versions+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
tests=("$@")
((${#versions[@]})) || versions=(3.10.13 3.12.1)
((${#tests[@]})) || tests=(tests/test_serving.py tests/test_api.py tests/test_translation.py tests/test_projection.py
                          tests/test_judge.py tests/test_train.py tests/test_distributed.py)
root=${FORGER_PYTHONS_DIR:-/tmp}
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
stamp_of() { cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# `python app.py` in the venv, on a free port, offline, with a cache of its own: the page must answer 200.
check_app() {
  local py=$1 log=$2 port pid code="" waited=0
  port=$(free_port)
  GRADIO_SERVER_PORT=$port GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 FORGER_CACHE=$(mktemp -d) \
    "$py" app.py >"$log" 2>&1 &
  pid=$!
  while ((waited < 180)) && kill -0 "$pid" 2>/dev/null; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null) && [[ $code == 200 ]] && break
    sleep 1; ((waited++))
  done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  if [[ $code == 200 ]]; then echo "app: page served (HTTP 200) after ${waited} s"; return 0; fi
  echo "app: FAILED (HTTP ${code:-none} after ${waited} s; see $log)"; return 1
}

status=0
summary=()
for v in "${versions[@]}"; do
  if [[ -x $v ]]; then base=$v; v=$("$v" -c 'import platform; print(platform.python_version())')
  else base=$pyenv_root/versions/$v/bin/python; fi
  venv=$root/forger-py$v
  echo "== Python $v: $venv"
  if [[ ! -x $base ]]; then summary+=("$v: no such Python ($base)"); status=1; continue; fi
  if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv" && "$base" -m venv "$venv" || { summary+=("$v: venv FAILED"); status=1; continue; }
  fi
  if [[ $(cat "$venv/.forger-requirements" 2>/dev/null) != "$(stamp_of)" ]]; then
    echo "installing requirements-dev.txt (log: $venv/install.log)"
    if "$venv/bin/python" -m pip install -q --upgrade pip >"$venv/install.log" 2>&1 &&
       "$venv/bin/python" -m pip install -r requirements-dev.txt >>"$venv/install.log" 2>&1; then
      stamp_of >"$venv/.forger-requirements"
    else
      tail -20 "$venv/install.log"; summary+=("$v: pip install FAILED (see $venv/install.log)"); status=1; continue
    fi
  fi
  "$venv/bin/python" -c 'import sys, torch, torchvision, gradio, numpy
print("python", sys.version.split()[0], "torch", torch.__version__, "torchvision", torchvision.__version__,
      "gradio", gradio.__version__, "numpy", numpy.__version__)'
  app=$(check_app "$venv/bin/python" "$venv/app.log") || status=1
  echo "$app"
  echo "pytest ${tests[*]} (log: $venv/tests.log)"
  "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider "${tests[@]}" >"$venv/tests.log" 2>&1 || status=1
  result=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error|skipped)|no tests ran' "$venv/tests.log" | tail -1)
  grep -E '^(FAILED|ERROR|SKIPPED) ' "$venv/tests.log"
  summary+=("$v: $app; pytest: ${result:-no summary line (see $venv/tests.log)}")
done

echo
echo "== summary ($(cd "$repo" && git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ', with uncommitted changes'))"
printf '%s\n' "${summary[@]}"
exit $status
