"""AI service figures on a running, seeded local cloud (`come2us up`, `come2us seed`).

- query latency: sequential searches through the gateway (what a client sees) and the time
  the service itself reports (``tookMs``: embedding the query and ranking), p50 and p99;
- embedding throughput and model load time, measured in this process with the same encoder
  the service runs (one inference thread, batches of 32) on the seed catalogue's texts.

    .venv/bin/python bench/ai_search.py [--requests 300]

Bounded: a fixed number of requests to the loopback gateway, one at a time, paced below the
route's rate limit.
"""

from __future__ import annotations

import argparse
import statistics
import time

from services.ai.domain.embedding import load_encoder
from services.ai.domain.products import Product
from stack.come2us import come2us
from stack.local.clients import gateway
from stack.local.seed import Catalogue

QUERIES = ("running shoes", "something to keep coffee hot", "a gift for a child who likes "
           "dinosaurs", "headphones for the gym", "warm winter coat", "kayak paddle",
           "cast iron pan", "board game for a family evening", "camping tent", "usb charger")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rate", type=float, default=15.0,
                        help="requests per second: below the AI route's rate limit (20/s)")
    args = parser.parse_args()

    catalogue = Catalogue.load()
    wall: list[float] = []
    took: list[float] = []
    with gateway(come2us()) as http:
        first = time.perf_counter()
        for i in range(args.requests):
            query = QUERIES[i % len(QUERIES)]
            started = time.perf_counter()
            time.sleep(max(0.0, first + i / args.rate - started))
            started = time.perf_counter()
            response = http.get("/api/ai/search", params={"q": query, "limit": 10})
            wall.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            took.append(float(response.json()["tookMs"]))
    print(f"search over the seed catalogue ({len(catalogue.products)} products), "
          f"{args.requests} sequential requests:")
    print(f"  through the gateway: p50 {percentile(wall, 50):.1f} ms, "
          f"p99 {percentile(wall, 99):.1f} ms")
    print(f"  in the service (tookMs): p50 {percentile(took, 50):.1f} ms, "
          f"p99 {percentile(took, 99):.1f} ms")

    started = time.perf_counter()
    encoder = load_encoder()
    print(f"model load (files verified, tokenizer, ONNX session): "
          f"{time.perf_counter() - started:.2f} s")
    texts = [Product(str(i), p.name, p.description, p.price, "ACTIVE").text
             for i, p in enumerate(catalogue.products)]
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        encoder.encode(texts)
        runs.append(time.perf_counter() - started)
    best = statistics.median(runs)
    print(f"embedding throughput (1 thread, batches of 32): {len(texts) / best:.0f} texts/s "
          f"({len(texts)} product texts in {best:.2f} s, median of 3)")


if __name__ == "__main__":
    main()
