"""A local imitation of the OpenAI and Azure OpenAI Files, Uploads and Batches APIs, of
Anthropic's Message Batches API (under ``/anthropic``: ``Simulator.anthropic_api_base``) and of
the Gemini API's Files and Batch Mode (under ``/gemini``: ``Simulator.gemini_api_base``).

    from devserver.simulator import Simulator, SimulatorConfig

    sim = Simulator(SimulatorConfig(port=0, batch_phase_seconds=0.5)).start()
    client = openai.OpenAI(base_url=sim.openai_api_base, api_key="sim-openai-key")
    ...
    sim.stop()

Modules: ``server`` (HTTP front, routing, auth, faults, the ``Simulator`` class), ``state`` (records and
provider semantics under one lock), ``batchwork`` (streaming batch validation and output),
``bodies`` (endpoint response bodies), ``httpio`` (chunked and multipart streaming), ``records``
(wire shapes), ``errors`` (the error envelope), ``anthropic_batches`` (Anthropic's form) and
``anthropic_messages`` (a Claude Message for a request's params, for every form that runs Claude),
``gemini``, ``gemini_records``, ``gemini_routes`` and ``gemini_requests`` (Gemini's form: its
state, records, HTTP routes, and the request rules it enforces),
``limits`` (each form's caps and quotas, ``SimulatorConfig.limits``, and the test directives a line
can carry: ``sim-expire`` and ``sim-fail-<code>`` in a custom_id, first attempt only),
``google`` (Google's forms: ``google_auth``, the service-account token endpoint; ``gcs``, Cloud
Storage; ``vertex``, Vertex AI batch prediction, its rows answered by ``vertex_models``).
"""

from .config import SimulatorConfig, SteppedClock
from .server import Simulator

__all__ = ["Simulator", "SimulatorConfig", "SteppedClock"]
