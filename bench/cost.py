"""What one batch lifecycle costs on AWS, and what a month idle costs, from the requests the
gateway's functions make, counted, priced with bench/aws_prices_us_east_1.json.

    .venv/bin/python bench/cost.py                      # 3 lifecycles (~1 min), the median shown
    .venv/bin/python bench/cost.py --json .bench/cost.json

The lifecycle runs through the local gateway (what `make serve` runs: the real handlers, the
simulator, an embedded moto server): upload a batch file, create a batch, 30 polls, the watcher
passes it takes, download the output, and the `batch.completed` webhook delivered. Every AWS
request each function made is counted (bench/_aws_meter.py): Lambda invocations with their
configured memory and measured duration (arm64 price; this machine's time, moto's latency),
API Gateway requests, DynamoDB units, S3 requests and bytes, Secrets Manager calls, SQS
messages (a queue consumer's message costs its receive and delete too), EventBridge entries,
the EMF bytes CloudWatch Logs ingests. Then a few idle watcher passes (nothing to watch) give
the month idle: the secrets, the watcher every minute (its scheduler, invocations, reads and
metrics), the webhook queue's pollers, the dashboard and the alarms.

Figures: dollars per lifecycle and per idle month, and per function. The prices are list prices
without the free tier (which would make a small deployment's month nearly free).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "functions"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# the functions' logger is made at import, before the local server sets their environment
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from bench._aws_meter import MEMORY_MB, ROUTED, FunctionUse, Meter, metering  # noqa: E402
from bench._results import write_json  # noqa: E402
from bench._stats import median  # noqa: E402

PRICES_FILE = Path(__file__).with_name("aws_prices_us_east_1.json")
INPUT = REPO_ROOT / "examples" / "requests.jsonl"
MASTER_KEY = "sk-cost-bench"
POLLS = 30
MINUTES_A_MONTH = 30 * 24 * 60
SECONDS_A_MONTH = MINUTES_A_MONTH * 60
# The stack's secrets (infra/stateful.py: master key, provider keys, key pepper).
SECRETS = 3
# Lambda's SQS event source mapping long-polls with at least 5 pollers, each a ReceiveMessage
# per 20 s wait when the queue is empty (billed as SQS requests):
# https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
SQS_IDLE_POLLERS, SQS_LONG_POLL_SECONDS = 5, 20
# What a monitoring stack adds (issue 25): one dashboard and its alarms; --alarms overrides.
DEFAULT_ALARMS = 12


def prices() -> dict[str, float]:
    table = json.loads(PRICES_FILE.read_text())["prices"]
    return {name: float(entry["usd"]) for name, entry in table.items()}


class _Receiver(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _wait(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def run_lifecycle(gateway: Any) -> tuple[Meter, dict[str, Any], Meter]:
    import httpx
    import openai

    _Receiver.received = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    endpoint = httpx.post(
        f"{gateway.api_base}/webhook_endpoints",
        headers=headers,
        json={
            "name": "cost bench",
            "url": f"http://127.0.0.1:{receiver.server_port}/hook",
            "event_types": ["batch.completed"],
        },
        timeout=30,
    )
    assert endpoint.status_code == 200, endpoint.text
    client = openai.OpenAI(base_url=gateway.api_base, api_key=MASTER_KEY, max_retries=0, timeout=60)
    facts: dict[str, Any] = {}
    with metering(gateway) as meter:
        uploaded = client.files.create(file=("requests.jsonl", INPUT.read_bytes()), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        for _ in range(POLLS):
            batch = client.batches.retrieve(batch.id)
            time.sleep(0.05)  # the simulator's phases are real time (a bench, not a test)
        passes = 0
        while True:
            passes += 1
            report = gateway.watcher.run_once()
            if not report or not report.get("batches_seen"):
                break
            if passes >= 10:
                break
        assert batch.status == "completed" and batch.output_file_id, batch
        content = client.files.content(batch.output_file_id).read()
        delivered = _wait(lambda: len(_Receiver.received) >= 1, 20)
        facts = {
            "status": batch.status,
            "input_bytes": INPUT.stat().st_size,
            "output_bytes": len(content),
            "polls": POLLS,
            "watcher_passes": passes,
            "webhook_delivered": delivered,
            "webhooks_received": len(_Receiver.received),
        }
    with metering(gateway) as idle:
        for _ in range(5):
            gateway.watcher.run_once()
    receiver.shutdown()
    return meter, facts, idle


def function_dollars(name: str, use: FunctionUse, price: dict[str, float]) -> dict[str, float]:
    gb_seconds = sum(use.milliseconds) / 1000 * MEMORY_MB.get(name, 512) / 1024
    sqs = use.sqs_requests + (2 * use.invocations if name == "webhook_deliver" else 0)
    return {
        "lambda": use.invocations * price["lambda_request"] + gb_seconds * price["lambda_arm64_gb_second"],
        "api_gateway": (use.invocations if name in ROUTED else 0) * price["apigateway_rest_request"],
        "dynamodb": use.read_units * price["dynamodb_read_request_unit"]
        + use.write_units * price["dynamodb_write_request_unit"],
        "s3": use.s3_put_class * price["s3_put_class_request"]
        + use.s3_get_class * price["s3_get_class_request"],
        "secrets_manager": use.secrets_calls * price["secretsmanager_api_call"],
        "sqs": sqs * price["sqs_standard_request"],
        "eventbridge": use.events_entries * price["eventbridge_custom_event"],
        "data_out": use.response_bytes / 1e9 * price["data_transfer_out_gb"],
        "logs_emf": use.emf_bytes / 1e9 * price["cloudwatch_logs_ingested_gb"],
        "xray": use.invocations * price["xray_trace_recorded"],
    }


def per_function(meter: Meter, price: dict[str, float]) -> dict[str, dict[str, Any]]:
    rows = {}
    for name, use in sorted(meter.functions.items()):
        dollars = function_dollars(name, use, price)
        rows[name] = {
            "invocations": use.invocations,
            "memory_mb": MEMORY_MB.get(name, 512),
            "ms_total": round(sum(use.milliseconds), 1),
            "ms_median": round(median(use.milliseconds), 1) if use.milliseconds else 0,
            "dynamodb_rru": use.read_units,
            "dynamodb_wru": use.write_units,
            "s3_put_class": use.s3_put_class,
            "s3_get_class": use.s3_get_class,
            "s3_bytes_in": use.s3_bytes_in,
            "secrets_calls": use.secrets_calls,
            "sqs_requests": use.sqs_requests,
            "events_entries": use.events_entries,
            "emf_bytes": use.emf_bytes,
            "other_calls": use.other_calls,
            "usd": dollars,
            "usd_total": sum(dollars.values()),
        }
    return rows


def idle_month(idle: Meter, price: dict[str, float], alarms: int, passes: int) -> dict[str, float]:
    """A month with no traffic: the watcher every minute, as one idle pass measured here."""
    watcher = idle.functions.get("batch_watcher", FunctionUse())
    per_pass = {
        key: value / passes for key, value in function_dollars("batch_watcher", watcher, price).items()
    }
    watcher_metrics = 6  # the metrics every pass writes (service.watcher._emit_pass), each one metric
    return {
        "secrets": SECRETS * price["secretsmanager_secret_month"],
        "watcher_invocations": MINUTES_A_MONTH * (per_pass["lambda"] + per_pass["xray"]),
        "watcher_dynamodb": MINUTES_A_MONTH * per_pass["dynamodb"],
        "watcher_s3": MINUTES_A_MONTH * per_pass["s3"],
        "watcher_logs_emf": MINUTES_A_MONTH * per_pass["logs_emf"],
        "watcher_scheduler": MINUTES_A_MONTH * price["eventbridge_scheduler_invocation"],
        "watcher_custom_metrics": watcher_metrics * price["cloudwatch_custom_metric_month"],
        "webhook_queue_polling": SQS_IDLE_POLLERS
        * SECONDS_A_MONTH
        / SQS_LONG_POLL_SECONDS
        * price["sqs_standard_request"],
        "dashboard": price["cloudwatch_dashboard_month"],
        "alarms": alarms * price["cloudwatch_alarm_month"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--runs", type=int, default=3, help="lifecycles, each on a fresh gateway")
    parser.add_argument("--alarms", type=int, default=DEFAULT_ALARMS, help="alarms the stack creates")
    args = parser.parse_args()

    from devserver.server import start_gateway

    price = prices()
    runs = []
    for _ in range(args.runs):  # a fresh gateway each: every function's first call is cold
        with start_gateway(
            master_key=MASTER_KEY, simulator_phase_seconds=0.05, watch_interval_seconds=0
        ) as gateway:
            meter, facts, idle = run_lifecycle(gateway)
        functions = per_function(meter, price)
        runs.append((sum(row["usd_total"] for row in functions.values()), meter, facts, idle, functions))
    runs.sort(key=lambda run: run[0])
    lifecycle_usd, meter, facts, idle, functions = runs[len(runs) // 2]  # the median run
    month = idle_month(idle, price, args.alarms, passes=5)
    idle_pass = idle.functions.get("batch_watcher", FunctionUse())
    report = {
        "runs_lifecycle_usd": [run[0] for run in runs],
        "lifecycle": facts,
        "functions": functions,
        "lifecycle_usd": lifecycle_usd,
        "lifecycle_usd_by_service": {
            service: sum(row["usd"][service] for row in functions.values())
            for service in next(iter(functions.values()))["usd"]
        },
        "idle_pass": {
            "ms_median": round(median(idle_pass.milliseconds), 1) if idle_pass.milliseconds else 0,
            "dynamodb_rru": idle_pass.read_units / 5,
            "dynamodb_wru": idle_pass.write_units / 5,
            "emf_bytes": idle_pass.emf_bytes / 5,
        },
        "idle_month_usd": sum(month.values()),
        "idle_month_usd_by_item": month,
        "unattributed_calls": meter.unattributed,
        "prices": str(PRICES_FILE.relative_to(REPO_ROOT)),
    }
    _print(report)
    if args.json:
        write_json(args.json, report)
    return 0


def _print(report: dict[str, Any]) -> None:
    print(f"lifecycle: {json.dumps(report['lifecycle'])}")
    columns = [("calls", 6), ("MB", 6), ("ms", 9), ("RRU", 7), ("WRU", 7), ("S3 P/G", 8)]
    columns += [("SM", 4), ("SQS", 4), ("EB", 4), ("USD", 12)]
    print(f"{'function':<18}" + "".join(f"{name:>{width}}" for name, width in columns))
    for name, row in report["functions"].items():
        print(
            f"{name:<18}{row['invocations']:>6}{row['memory_mb']:>6}{row['ms_total']:>9.0f}"
            f"{row['dynamodb_rru']:>7.1f}{row['dynamodb_wru']:>7.0f}"
            f"{str(row['s3_put_class']) + '/' + str(row['s3_get_class']):>8}{row['secrets_calls']:>4}"
            f"{row['sqs_requests']:>4}{row['events_entries']:>4}{row['usd_total']:>12.7f}"
        )
    print("by service: " + ", ".join(f"{k} ${v:.7f}" for k, v in report["lifecycle_usd_by_service"].items()))
    print("runs: " + ", ".join(f"${usd:.6f}" for usd in report["runs_lifecycle_usd"]))
    print(
        f"one lifecycle (median run): ${report['lifecycle_usd']:.6f}"
        f"  (${report['lifecycle_usd'] * 1000:.4f} per 1,000)"
    )
    print("idle month: " + ", ".join(f"{k} ${v:.4f}" for k, v in report["idle_month_usd_by_item"].items()))
    print(f"idle month total: ${report['idle_month_usd']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
