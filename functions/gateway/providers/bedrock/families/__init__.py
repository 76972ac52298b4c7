"""The Bedrock model families beyond Claude, one translation module each (pure functions both
ways), chosen by `bedrock.records.family(model_id)`:

- `amazon` (Amazon Nova): `nova`
- `meta` (Meta Llama 3 and 4): `llama`
- `openai` (OpenAI's open-weight gpt-oss): `gpt_oss`

Each takes an OpenAI chat completions `body` to its InvokeModel body (`model_input`, refusing
what the family cannot take with a `TranslationError` naming the field), and its model's output
back to a `chat.completion` (`chat_completion`). Models of a family the module does not speak
(Titan, Llama 2, ...) are not supported (`translator` answers None).
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.providers.bedrock.families import gpt_oss, llama, nova


class Translator(Protocol):
    FAMILY: str

    def takes(self, model_id: str) -> bool: ...

    def model_input(
        self, body: dict[str, Any], *, default_max_tokens: int, model_id: str
    ) -> dict[str, Any]: ...

    def chat_completion(
        self, output: dict[str, Any], *, created: int, model_id: str, record_id: str
    ) -> dict[str, Any]: ...


# family (the model id's provider part) -> its translation module
TRANSLATORS: dict[str, Any] = {"amazon": nova, "meta": llama, "openai": gpt_oss}
# What each family runs, as the unsupported-model error names it.
EXAMPLES = {
    "amazon": "amazon.nova-lite-v1:0",
    "meta": "us.meta.llama3-3-70b-instruct-v1:0",
    "openai": "openai.gpt-oss-120b-1:0",
}


def translator(family: str, model_id: str) -> Translator | None:
    module = TRANSLATORS.get(family)
    return module if module is not None and module.takes(model_id) else None
