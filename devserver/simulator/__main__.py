"""``python -m devserver.simulator --port 4010``: run the simulator in the foreground."""

from __future__ import annotations

import argparse
import json
import signal
import threading

from . import Simulator, SimulatorConfig
from .limits import SimulatorLimits


def main(argv: list[str] | None = None) -> None:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m devserver.simulator", description=__doc__)
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=4010)
    parser.add_argument("--openai-key", default=defaults.openai_key)
    parser.add_argument("--azure-key", default=defaults.azure_key)
    parser.add_argument("--batch-phase-seconds", type=float, default=defaults.batch_phase_seconds)
    parser.add_argument("--storage-dir", default=None, help="keep files here (default: a temp dir)")
    parser.add_argument("--log-requests", action="store_true", help="print one line per request to stderr")
    parser.add_argument(
        "--limits", default="", help="caps and quotas as JSON, e.g. '{\"max_requests\": 1000}' (limits.py)"
    )
    args = parser.parse_args(argv)
    try:
        limits = SimulatorLimits.parse(json.loads(args.limits)) if args.limits else SimulatorLimits()
    except ValueError as exc:
        parser.error(f"--limits: {exc}")
    sim = Simulator(
        SimulatorConfig(
            port=args.port,
            host=args.host,
            openai_key=args.openai_key,
            azure_key=args.azure_key,
            batch_phase_seconds=args.batch_phase_seconds,
            storage_dir=args.storage_dir,
            log_requests=args.log_requests,
            limits=limits,
        )
    ).start()
    print(f"OpenAI simulator listening on {sim.url}", flush=True)
    print(f"  OpenAI base: {sim.openai_api_base}  (Authorization: Bearer {args.openai_key})", flush=True)
    print(f"  Azure base:  {sim.azure_api_base}  (api-key: {args.azure_key}, ?api-version=...)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
