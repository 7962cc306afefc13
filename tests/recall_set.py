"""A small labelled retrieval set: memories an assistant keeps about its user, and questions
that mean one of them while sharing few of its words.

``QUERIES`` maps each question to the index in ``MEMORIES`` of the memory it asks for. Used to
check that a semantic embedder finds by meaning what a lexical one cannot.
"""

from __future__ import annotations

import numpy as np

MEMORIES = [
    "The user's daughter is called Alice.",  # 0
    "The user is allergic to peanuts.",  # 1
    "The user works as a nurse at the city hospital.",  # 2
    "The user's flight to Tokyo leaves on March 3rd.",  # 3
    "The user prefers tea over coffee in the morning.",  # 4
    "The user drives a blue Toyota Corolla.",  # 5
    "The user's birthday is on the 14th of July.",  # 6
    "The user is learning to play the guitar.",  # 7
    "The user lives in a flat in Berlin.",  # 8
    "The user has a golden retriever named Max.",  # 9
    "The user is vegetarian and does not eat meat.",  # 10
    "The user's rent is 1200 euros a month.",  # 11
    "The user runs a marathon every spring.",  # 12
    "The user's wife is a software engineer.",  # 13
    "The user cannot sleep well and has insomnia.",  # 14
    "The user is saving money to buy a house.",  # 15
    "The user speaks Spanish and Portuguese fluently.",  # 16
    "The user broke their left arm skiing last winter.",  # 17
    "The user's favourite film is The Godfather.",  # 18
    "The user is afraid of spiders.",  # 19
    "The user bought coffee for 300 roubles.",  # 20
    "The user's password manager is Bitwarden.",  # 21
    "The user's mother lives in Lisbon.",  # 22
    "The user is studying for a law degree.",  # 23
    "The user meets friends for board games on Fridays.",  # 24
    "The user's laptop is a ThinkPad X1 Carbon.",  # 25
    "The user is planning a wedding for next June.",  # 26
    "The user gets seasick on boats.",  # 27
    "The user's phone number changed last week.",  # 28
    "The user grows tomatoes on the balcony.",  # 29
]

QUERIES = {
    "what is my kid's name": 0,
    "which foods could give me a bad reaction": 1,
    "what is my job": 2,
    "when do I travel to Japan": 3,
    "what hot drink do I like when I wake up": 4,
    "what kind of car do I own": 5,
    "when was I born": 6,
    "which instrument am I practising": 7,
    "which city is my home": 8,
    "what's my dog's name": 9,
    "can I order a steak for them": 10,
    "how much do I pay for my apartment": 11,
    "what long-distance race do I do": 12,
    "what does my spouse do for a living": 13,
    "why am I tired at night": 14,
    "what am I putting money aside for": 15,
}


def recall_at(k: int, memories: np.ndarray, queries: np.ndarray) -> float:
    """The share of queries whose memory is among the ``k`` most cosine-similar."""
    memories = memories / np.linalg.norm(memories, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    ranked = np.argsort(-(queries @ memories.T), axis=1)[:, :k]
    targets = np.array(list(QUERIES.values()))
    return float(np.mean([target in row for target, row in zip(targets, ranked, strict=True)]))
