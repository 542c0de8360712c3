"""A small multi-language repository shared by the apps and serve tests (no tests in this module).

It has cross-language twins (Java / C# / Python cart totals), an exact copy and a renamed
near-copy of a function, markdown docs describing some functions, and one docstring that
describes something else entirely.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from conftest import write_files

REPO = {
    "shop/Cart.java": '''
        package shop;

        import java.util.List;

        public class Cart {
            /** Sum of item prices times quantities for every line in the cart. */
            public double totalPrice(List<Item> items) {
                double total = 0;
                for (Item item : items) {
                    total += item.price * item.quantity;
                }
                return total;
            }

            /** Remove every item whose quantity dropped to zero. */
            public void removeEmpty(List<Item> items) {
                items.removeIf(item -> item.quantity <= 0);
            }
        }
        ''',
    "shop/Cart.cs": '''
        using System.Collections.Generic;

        namespace Shop
        {
            public class Cart
            {
                /// <summary>Sum of item prices times quantities.</summary>
                public double TotalPrice(List<Item> items)
                {
                    double total = 0;
                    foreach (var item in items)
                    {
                        total += item.Price * item.Quantity;
                    }
                    return total;
                }
            }
        }
        ''',
    "net/retry.py": '''
        import random
        import time


        def retry_with_backoff(operation, attempts=5, base_delay=0.1):
            """Call operation again when it raises, sleeping longer after each failure."""
            for attempt in range(attempts):
                try:
                    return operation()
                except ConnectionError:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(base_delay * 2 ** attempt + random.random() / 10)
        ''',
    "util/text.py": '''
        import re


        def slugify(title):
            """Turn a title into a URL slug: lower case, words joined by dashes."""
            words = re.findall(r"[a-z0-9]+", title.lower())
            if not words:
                return "untitled"
            slug = "-".join(words)
            return slug[:80].rstrip("-")


        def parse_config_file(path):
            """Read key=value lines into a dict, skipping comments and blank lines."""
            result = {}
            with open(path) as fh:
                for line in fh:
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    key, _, value = line.partition("=")
                    result[key.strip()] = value.strip()
            return result


        def compute_average(values):
            """Send an e-mail notification to the site administrator about new user sign-ups."""
            if not values:
                return 0.0
            total = 0.0
            for value in values:
                total += value
            return total / len(values)
        ''',
    "legacy/text_utils.py": '''
        import re


        def slugify(title):
            """Turn a title into a URL slug: lower case, words joined by dashes."""
            words = re.findall(r"[a-z0-9]+", title.lower())
            if not words:
                return "untitled"
            slug = "-".join(words)
            return slug[:80].rstrip("-")


        def make_url_slug(heading):
            """Make a URL slug from a heading: lower-case words joined with dashes."""
            parts = re.findall(r"[a-z0-9]+", heading.lower())
            if not parts:
                return "untitled"
            result = "-".join(parts)
            return result[:80].rstrip("-")
        ''',
    "util/stats.py": '''
        def mean(values):
            """Arithmetic mean of a list of numbers; 0 for an empty list."""
            if not values:
                return 0.0
            return sum(values) / len(values)


        def median(values):
            """Middle value of the sorted numbers (mean of the two middle ones for even counts)."""
            ordered = sorted(values)
            n = len(ordered)
            if n == 0:
                return 0.0
            mid = n // 2
            return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


        def variance(values):
            """Population variance: mean squared distance of the numbers from their mean."""
            m = mean(values)
            return sum((v - m) ** 2 for v in values) / len(values) if values else 0.0


        def clamp(value, low, high):
            """Limit a number to the closed interval between low and high."""
            return max(low, min(high, value))


        def normalize_scores(scores):
            """Scale a list of scores linearly so that the smallest becomes 0 and the largest 1."""
            lo, hi = min(scores), max(scores)
            if hi == lo:
                return [0.0 for _ in scores]
            return [(s - lo) / (hi - lo) for s in scores]
        ''',
    "docs/guide.md": '''
        # Guide

        ## Retrying failed network calls

        Network operations that fail with a connection error are retried with exponential backoff:
        each attempt waits twice as long as the previous one, plus some random jitter.

        ## Shopping cart totals

        The cart total is the sum of each item's price multiplied by its quantity.

        ## Configuration files

        Configuration is read from key=value lines; comments start with a hash sign.
        ''',
}


def make_repo(root: Path) -> Path:
    return write_files(root, REPO)


def build_index(root: Path, model: str | None):
    """Index ``root`` (tiny model folder or None for MiniLM) and return a Searcher on it."""
    from codeseer.index.indexer import index_repository
    from codeseer.index.store import IndexStore
    from codeseer.search.searcher import Searcher

    report = index_repository(root, model=model)
    return Searcher(IndexStore(Path(report.index_dir)))


@contextmanager
def running(app):
    """Serve an ASGI ``app`` with uvicorn on 127.0.0.1:<free port> in a thread; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY (see listen_socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
