"""`python -m devserver` (`make serve`): the whole gateway on http://127.0.0.1:$PORT."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from gateway.runtime import resources

import devserver  # noqa: F401  (puts functions/ on sys.path)
from devserver.server import LocalGateway, start_gateway

LOCAL_FUNCTION_LOG_LEVEL = "WARNING"


def banner(gateway: LocalGateway) -> str:
    lines = [
        "",
        f"  OpenAI Batches & Files gateway (local)   {gateway.url}",
        f"  OpenAI SDK base_url     {gateway.api_base}",
        f"  Master key              {gateway.master_key}   (local dev key)",
        f"  Console                 {gateway.url}/console   (sign in with a key)",
    ]
    lines += [
        f"  AzureOpenAI endpoint    {gateway.url}/{name}   (azure_endpoint; LiteLLM azure api_base)"
        for name, provider in gateway.providers.items()
        if provider.type == "azure"
    ]
    for name, provider in gateway.providers.items():
        where = "simulator" if provider.simulated else "real"
        # Bedrock is reached through boto3 (AWS_ENDPOINT_URL_BEDROCK), not an api_base
        address = provider.api_base or os.environ.get("AWS_ENDPOINT_URL_BEDROCK", "")
        lines.append(f"  Provider {name:<14} {where:<9} {address}")
    if gateway.simulator is not None:
        simulated = ", ".join(gateway.simulated_providers)
        lines.append(
            f"  Provider simulator      {gateway.simulator.url}   (for {simulated}: no API key set; "
            "set OPENAI_API_KEY / AZURE_API_KEY + AZURE_API_BASE / ANTHROPIC_API_KEY / BEDROCK_REGION "
            "for real ones)"
        )
    aws = "embedded moto" if gateway.embedded_moto else "AWS_ENDPOINT_URL"
    lines.append(f"  AWS endpoint            {gateway.aws_endpoint_url}   ({aws})")
    table = os.environ.get(resources.ENV_TABLE_NAME, resources.DEFAULT_TABLE_NAME)
    lines.append(f"  DynamoDB table          {table}   (aws dynamodb scan --endpoint-url <AWS endpoint>)")
    lines += _data_lines(gateway)
    if gateway.watcher is not None:
        every = f"every {gateway.watcher.interval:g} s" if gateway.watcher.interval > 0 else "off"
        lines.append(
            f"  Batch watcher           {every}   (WATCH_INTERVAL_SECONDS; events on moto's EventBridge)"
        )
    missing = [route.name for route in gateway.api.routes if not _handler_exists(route.name)]
    if missing:
        lines.append(f"  Not implemented yet     {', '.join(missing)} (answer 501)")
    lines += [
        "",
        "  Try:",
        f"    curl -s {gateway.url}/health",
        f"    curl -s {gateway.api_base}/files -H 'Authorization: Bearer {gateway.master_key}'",
        "",
        "  Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


def _data_lines(gateway: LocalGateway) -> list[str]:
    data = gateway.local_data
    if data is None:
        return ["  Local data              in memory only: gone when the server stops"]
    kept = "files, batches, keys" if gateway.embedded_moto else "the simulator's files and batches"
    restored = data.restored
    found = (
        "first start, empty"
        if restored.empty
        else f"restored {restored.items} table items, {restored.objects} S3 objects, "
        f"{restored.simulator_files} simulator files, {restored.simulator_batches} simulator batches"
    )
    lines = [
        f"  Local data              {data.directory}   (kept across restarts: {kept}; {found})",
        "                          start empty: make serve FRESH=1, or make clean-local",
    ]
    if restored.refused:
        lines.append(
            f"  Not restored            {restored.refused} item(s) moto refused, kept in "
            f"{data.directory / 'refused'}"
        )
    if restored.repaired:
        lines.append(
            f"  Lost batches            {restored.repaired} unfinished batch(es) without a simulator "
            "record, now failed (batch_lost)"
        )
    return lines


def _handler_exists(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(f"handlers.{name}") is not None
    except ImportError:
        return False


def _flag(name: str, *, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return raw.strip().lower() not in ("0", "false", "no", "off")


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("DEVSERVER_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # One line per request (the access log): the upstream calls behind it only at DEBUG.
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Many request threads share one boto3 client here (one per Lambda environment in AWS):
    # its pool discarding a spare connection is no news.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    # The access log is the one line per request; the functions' own "request" line (JSON,
    # on standard output, as CloudWatch gets it) comes back with LOG_LEVEL=INFO.
    os.environ.setdefault("LOG_LEVEL", LOCAL_FUNCTION_LOG_LEVEL)
    port = int(os.environ.get("PORT") or 4000)
    access_log = _flag("ACCESS_LOG", default=True)
    # make serve sets it (.local); python -m devserver alone (tests, benches) keeps nothing.
    data_dir = os.environ.get("DEVSERVER_DATA_DIR", "")
    try:
        gateway = start_gateway(
            port,
            access_log=access_log,
            simulator_port=int(os.environ.get("SIM_PORT") or port + 1),
            data_dir=None if data_dir.lower() in ("", "none") else data_dir,
            fresh=_flag("DEVSERVER_FRESH", default=False),
        )
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"devserver: cannot start: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(banner(gateway), flush=True)
    try:
        while not stop.wait(0.1):
            pass
    finally:
        if gateway.front is not None:
            gateway.front.stop()  # the requests being served finish (and log) first
        print("devserver: stopping", file=sys.stderr, flush=True)
        gateway.stop()
    return 0


def exit_now(code: int) -> None:
    """Everything is saved and stopped: end without waiting for the simulator's worker threads
    (a batch it was validating is validated again after the next start)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
