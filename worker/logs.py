"""Structured, greppable logs: ``event=stopped job_id=… worker_id=… reason=cancelled ms=0.9``."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("worker")


def _value(value: Any) -> str:
    text = f"{value:.1f}" if isinstance(value, float) else str(value)
    return f'"{text}"' if " " in text or not text else text


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    if not log.isEnabledFor(level):
        return  # per-job debug events cost nothing unless shown
    pairs = " ".join(f"{k}={_value(v)}" for k, v in fields.items() if v is not None)
    log.log(level, "event=%s %s", name, pairs)


def configure(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    for noisy in ("httpx", "httpcore", "realtime", "websockets", "hpack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
