#!/usr/bin/env bash
# Sets up what make localstack-test needs, idempotently (a stamp per input):
# - LocalStack's core in its own Python 3.13 venv, .localstack/venv (pins: requirements.txt here);
# - the `process` Lambda executor and `dynamodb:moto` provider plugins registered there (entry
#   points, and this folder on its path);
# - pytest there, for the plugins' own tests (plugin_tests/);
# - the Python 3.12 runtime's boto3 in .localstack/runtime/python3.12 (runtime-requirements.txt).
# Prints the python3.12 interpreter on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="${LOCALSTACK_HOME:-.localstack}"
mkdir -p "$root"

find_python() {  # pythonX.Y on PATH (that runs), else pyenv's installation of it
	local version="$1" candidate
	for candidate in "$(command -v "python$version" 2>/dev/null || true)" \
		$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -rV); do
		if [ -n "$candidate" ] && "$candidate" -c 'import sys' >/dev/null 2>&1; then
			echo "$candidate"
			return 0
		fi
	done
	echo "localstack: no python$version found (PATH or pyenv); install it, e.g. pyenv install $version" >&2
	return 1
}

py313="$(find_python 3.13)"
py312="$(find_python 3.12)"
venv="$root/venv"
stamp="$venv/.installed-$(cat "$here/requirements.txt" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
	echo "localstack: installing LocalStack's core into $venv (first run: about 2 minutes)" >&2
	rm -rf "$venv"
	"$py313" -m venv "$venv"
	"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
	touch "$stamp"
fi
# pytest for the plugins' own tests (tests/localstack/plugin_tests), apart: a change of it does
# not reinstall LocalStack.
plugin_test_stamp="$venv/.installed-plugin-tests-$(cat "$here/plugin-test-requirements.txt" | sha256sum | cut -c1-16)"
if [ ! -f "$plugin_test_stamp" ]; then
	"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/plugin-test-requirements.txt"
	touch "$plugin_test_stamp"
fi
# The plugin: importable from this folder, and found by plux through an entry point.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$here" > "$site/gateway_localstack_process_executor.pth"
dist="$site/gateway_localstack_process_executor-0.dist-info"
mkdir -p "$dist"
printf 'Metadata-Version: 2.1\nName: gateway-localstack-process-executor\nVersion: 0\n' > "$dist/METADATA"
printf '%s\n' '[localstack.lambda.runtime_executor]' \
	'process = localstack_plugin:ProcessRuntimeExecutorPlugin' '' \
	'[localstack.aws.provider]' 'dynamodb:moto = dynamodb_moto:dynamodb_moto' > "$dist/entry_points.txt"

runtime="$root/runtime/python3.12"
runtime_stamp="$runtime/.installed-$(cat "$here/runtime-requirements.txt" | sha256sum | cut -c1-16)"
if [ ! -f "$runtime_stamp" ]; then
	rm -rf "$runtime"
	"$venv/bin/pip" install --quiet --disable-pip-version-check --target "$runtime" \
		-r "$here/runtime-requirements.txt"
	touch "$runtime_stamp"
fi
echo "$py312"
