"""Dynamic batching: requests that arrive close together are scored in one model call.

The first request of a batch waits at most `max_wait_ms` for company; the batch closes earlier when it
holds `max_batch_size` sequences. The model runs in one worker thread, off the event loop, so the server
keeps accepting (and queueing) requests while a batch is scored. Admission is bounded: a request that
would push the number of admitted, unfinished sequences past `max_queue` is refused at once (the server
answers 503 with Retry-After) instead of waiting behind an unbounded queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rewardkit.serve.metrics import ServerMetrics

# process(requests) -> one result per request: its list of scores, or an exception for that request alone.
ProcessFn = Callable[[list[list]], list]


class QueueFull(RuntimeError):
    pass


@dataclass
class _Pending:
    items: list
    future: asyncio.Future


class DynamicBatcher:
    def __init__(self, process: ProcessFn, max_batch_size: int = 32, max_wait_ms: float = 5.0, max_queue: int = 1024,
                 metrics: ServerMetrics | None = None):
        self.process = process
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.metrics = metrics or ServerMetrics()
        self.admitted = 0  # sequences admitted and not yet scored
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rewardkit-model")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Finish what was admitted, then stop the worker."""
        while self.admitted:
            await asyncio.sleep(0.01)
        if self._task:
            self._task.cancel()
        self._executor.shutdown(wait=True)

    async def submit(self, items: list) -> list[float]:
        if self._queue is None:
            raise RuntimeError("the batcher is not running")
        if self.admitted and self.admitted + len(items) > self.max_queue:
            raise QueueFull(f"{self.admitted} sequences are waiting (limit {self.max_queue})")
        future = asyncio.get_running_loop().create_future()
        self._admit(len(items))
        self._queue.put_nowait(_Pending(items, future))
        return await future

    def _admit(self, n: int) -> None:
        self.admitted += n
        self.metrics.queue_depth = self.admitted

    async def _collect(self) -> list[_Pending]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        size = len(batch[0].items)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
            else:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            size += len(batch[-1].items)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = [p for p in batch if not p.future.done()]  # a client that went away cancelled its future
            try:
                if live:
                    results = await loop.run_in_executor(self._executor, self.process, [p.items for p in live])
                    self.metrics.batch(sum(len(p.items) for p in live))
                    for p, result in zip(live, results, strict=True):
                        if p.future.done():
                            continue
                        if isinstance(result, Exception):
                            p.future.set_exception(result)
                        else:
                            p.future.set_result(result)
            except Exception as err:  # the model failed: fail this batch, keep serving
                for p in live:
                    if not p.future.done():
                        p.future.set_exception(err)
            finally:
                self._admit(-sum(len(p.items) for p in batch))
