"""The comparison's workload: sizes and the messages every subject stores, identical for all.

Stdlib only: this module is imported both in the product's virtual environment (agentkeep, raw
drivers) and in the anchors' one (ADK, LangChain, LangGraph), so each subject is given the same
texts in the same order. The texts are made from a fixed seed: ~300 characters of varied words,
alternating user / assistant, with small metadata (turn number, channel, language).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SEED = 20_240_601
TEXT_CHARS = 300
POOL = 1_009
"""Distinct texts; message ``i`` uses text ``i % POOL`` (prime, so turns and texts don't align)."""

_VOCABULARY = (
    "account budget coffee station receipt card declined cash please remind monday friday "
    "meeting project timeline deploy server database backup invoice payment transfer rent "
    "travel ticket train airport hotel booking dinner lunch recipe grocery list doctor "
    "appointment schedule weather forecast umbrella weekend plan report draft review comment "
    "question answer summary translate email reply urgent later tomorrow yesterday morning "
    "evening price discount order delivery address phone number password reset login error "
    "update install version release notes feature request bug crash log metric chart total "
    "average monthly yearly expense income salary tax refund loan savings goal reminder note"
)
_WORDS = _VOCABULARY.split()


@dataclass(frozen=True)
class Msg:
    """One message as every subject receives it (each converts it to its own type)."""

    role: str
    text: str
    meta: dict[str, Any]


@dataclass
class Sizes:
    """How much of each workload to run; ``--quick`` and the smoke test use tiny ones."""

    w1_conversations: int = 50
    w1_messages: int = 200
    w1_budget_s: float = 10.0
    """A subject slower than this stops W1 at a conversation boundary (after at least 5)."""
    clients: int = 16
    w2_messages: int = 2_000
    loads: int = 30
    read_budget_s: float = 3.0
    """A read is sampled ``loads`` times, or fewer (at least 5) when they take this long."""
    w3_users: int = 20
    w3_small: int = 2_000
    w3_large: int = 100_000
    growth: list[int] = field(default_factory=lambda: [100, 1_000, 10_000, 100_000])
    growth_samples: int = 20
    growth_budget_s: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sizes:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def quick() -> Sizes:
    """Tiny sizes: every code path runs, in seconds."""
    return Sizes(
        w1_conversations=3,
        w1_messages=10,
        w1_budget_s=5.0,
        clients=4,
        w2_messages=60,
        loads=5,
        read_budget_s=1.0,
        w3_users=4,
        w3_small=40,
        w3_large=120,
        growth=[10, 100],
        growth_samples=3,
        growth_budget_s=0.5,
    )


def _pool() -> list[str]:
    rng = random.Random(SEED)
    texts = []
    for _ in range(POOL):
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < TEXT_CHARS + 20:
            word = rng.choice(_WORDS)
            words.append(word.capitalize() if rng.random() < 0.08 else word)
        text = " ".join(words)[:TEXT_CHARS].rstrip() + "."
        texts.append(text)
    return texts


_TEXTS = _pool()
_CHANNELS = ("web", "telegram", "slack")
_LANGS = ("en", "de", "fr", "es")


def message(i: int) -> Msg:
    """Message number ``i`` of a conversation (deterministic)."""
    return Msg(
        role="user" if i % 2 == 0 else "assistant",
        text=_TEXTS[i % POOL],
        meta={"turn": i, "channel": _CHANNELS[i % 3], "lang": _LANGS[i % 4]},
    )


def messages(start: int, count: int) -> list[Msg]:
    return [message(i) for i in range(start, start + count)]


def users(count: int) -> list[str]:
    return [f"user-{k:03d}" for k in range(count)]
