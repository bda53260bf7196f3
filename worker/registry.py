"""The handler registry. Each handler declares how it can be stopped:

- ``cooperative``: an ``async def fn(ctx, input)``; stopping cancels its task.
- ``blocking``: a ``def fn(ctx, input)`` run in a thread; it must call ``ctx.check()`` (or
  ``ctx.wait()``) between units of work, which raises ``JobCancelled`` once stopped.
- ``isolated``: a ``def fn(input, report)`` run in a child process; stopping terminates the
  process and kills it if it is still alive after the grace period.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["cooperative", "blocking", "isolated"]


@dataclass(frozen=True)
class Handler:
    name: str
    mode: Mode
    fn: Callable[..., Any]


@dataclass
class Registry:
    handlers: dict[str, Handler] = field(default_factory=dict)

    @classmethod
    def of(cls, handlers: Iterable[Handler]) -> Registry:
        return cls({h.name: h for h in handlers})

    def get(self, name: str) -> Handler | None:
        return self.handlers.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self.handlers)


def default_registry() -> Registry:
    from worker.handlers import demo, documents

    return Registry.of(
        [
            Handler(
                "process_document",
                "cooperative",
                documents.DocumentProcessor(documents.DocumentConfig.from_env()),
            ),
            Handler("demo.sleep", "cooperative", demo.sleep),
            Handler("demo.noop", "cooperative", demo.noop),
            Handler("demo.blocking", "blocking", demo.blocking),
            Handler("demo.stubborn", "isolated", demo.stubborn),
            Handler("demo.fail", "cooperative", demo.fail),
        ]
    )
