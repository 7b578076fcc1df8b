"""A replication peer for routing mode's tests: plays Temporal on both sides of
`AdminService/StreamWorkflowReplicationMessages` (docs/design/routing.md, "Testing").

Two clusters cannot replicate on this machine (the dev server turns global namespaces off), so this module stands in
for them with the message classes of the dev server's own schema (Tests/Fixtures/temporal-dev-schema.binpb):

* `SourceCluster` serves the streams a cluster's shards serve as the replication *source*: per shard a fixed log of
  batches of history tasks, each carrying `raw_task_info` (namespace id, workflow id, task id); a stream resumes
  after the last ACK the shard received (as Temporal resumes from its persisted reader state) and records the ACKs.
* `TargetShard` is one shard of a *target* cluster: it opens the stream, applies every batch it is sent (records
  its tasks) and acknowledges each batch's exclusive high watermark, as Temporal's receiver does.

Where a task must land is computed here with Google's farmhash (PyPI pyfarmhash), independently of the proxy.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from concurrent import futures

import farmhash
import grpc

from admin_calls import message_class
from netutil import free_address

ADMIN = "temporal.server.api.adminservice.v1.AdminService"
STREAM = f"/{ADMIN}/StreamWorkflowReplicationMessages"
Request = message_class("temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesRequest")
Response = message_class("temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse")
Task = message_class("temporal.server.api.replication.v1.ReplicationTask")


def history_shard(namespace_id: str, workflow_id: str, shard_count: int) -> int:
    """Temporal's WorkflowIDToHistoryShard."""
    return farmhash.fingerprint32(f"{namespace_id}_{workflow_id}".encode()) % shard_count + 1


class SourceCluster:
    """A cluster as the source of replication: a gRPC server whose shards serve their task logs."""

    def __init__(self, name: str, shard_count: int, seed: int, batches: int = 12, namespaces: int = 3,
                 tasks_per_batch: tuple[int, int] = (0, 6), payload_bytes: int = 0, credentials=None,
                 priorities: bool = False):
        self.name = name
        # Batches alternate between TASK_PRIORITY_HIGH (1) and TASK_PRIORITY_LOW (10), as Temporal's two readers of
        # a shard send them over one stream; the ACKs per priority are recorded in `priority_acks`.
        self.priorities = priorities
        self.priority_acks: dict[int, dict[int, int]] = {}
        # grpc.ssl_server_credentials to serve TLS; None for plain HTTP/2.
        self.credentials = credentials
        self.tasks_per_batch = tasks_per_batch
        # Each task's `data` blob (events), for volume: the proxy copies every byte of it.
        self.payload = bytes(payload_bytes)
        self.encoded: dict[tuple[int, int], bytes] = {}
        self.shard_count = shard_count
        self.address = free_address()
        self.rng = random.Random(seed)
        self.namespace_ids = [f"{name}-ns-{index:02d}-0000-0000-0000" for index in range(namespaces)]
        # shard -> [(tasks: [(task id, namespace id, workflow id)], exclusive high watermark)]
        self.logs: dict[int, list[tuple[list[tuple[int, str, str]], int]]] = {
            shard: [] for shard in range(1, shard_count + 1)}
        self.extend(batches)
        self.lock = threading.Lock()
        self.acks: dict[int, int] = {}
        self.streams: list[dict] = []
        self.server = None

    def extend(self, batches: int):
        """Appends `batches` batches to every shard's log (served on streams opened from now on)."""
        for shard, log in self.logs.items():
            task_id = log[-1][1] if log else shard * 1_000_000
            for _ in range(batches):
                tasks = []
                for _ in range(self.rng.randrange(*self.tasks_per_batch)):
                    tasks.append((task_id, self.rng.choice(self.namespace_ids), f"wf-{self.rng.randrange(10_000)}"))
                    task_id += self.rng.randrange(1, 4)
                task_id += self.rng.randrange(0, 3)
                log.append((tasks, task_id))

    def start(self) -> "SourceCluster":
        handler = grpc.method_handlers_generic_handler(ADMIN, {
            "StreamWorkflowReplicationMessages": grpc.stream_stream_rpc_method_handler(
                self._serve, request_deserializer=Request.FromString, response_serializer=Response.SerializeToString),
        })
        # One thread per open stream (each handler waits in its stream).
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2 * self.shard_count + 32))
        self.server.add_generic_rpc_handlers((handler,))
        if self.credentials is not None:
            self.server.add_secure_port(self.address, self.credentials)
        else:
            self.server.add_insecure_port(self.address)
        self.server.start()
        return self

    def stop(self):
        """Stops serving (every stream ends); `start` serves again on the same address, resuming from the ACKs."""
        if self.server is not None:
            self.server.stop(grace=0).wait()
            self.server = None

    def all_tasks(self):
        """(source shard, task id, namespace id, workflow id) of every task in the logs."""
        for shard, log in self.logs.items():
            for tasks, _ in log:
                for task_id, namespace_id, workflow_id in tasks:
                    yield shard, task_id, namespace_id, workflow_id

    def final_watermark(self, shard: int) -> int:
        return self.logs[shard][-1][1]

    def identity(self, shard: int, task_id: int) -> str:
        return f"{self.name}/{shard}/{task_id}"

    def _serve(self, requests, context):
        metadata = dict(context.invocation_metadata())
        shard = int(metadata["temporal-server-shard-id"])
        with self.lock:
            self.streams.append(metadata)
        if not 1 <= shard <= self.shard_count or metadata.get("temporal-client-shard-id") != str(shard):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"shard pair not served: {metadata}")

        def read():
            try:
                for request in requests:
                    if request.HasField("sync_replication_state"):
                        state = request.sync_replication_state
                        with self.lock:
                            self.acks[shard] = state.inclusive_low_watermark
                            levels = self.priority_acks.setdefault(shard, {})
                            if state.HasField("high_priority_state"):
                                levels[1] = state.high_priority_state.inclusive_low_watermark
                            if state.HasField("low_priority_state"):
                                levels[10] = state.low_priority_state.inclusive_low_watermark
            except grpc.RpcError:
                pass  # the stream ended

        threading.Thread(target=read, daemon=True).start()
        with self.lock:
            resume = self.acks.get(shard, 0)
        # Everything after the resume point, then whatever `extend` appends while the stream is open, as a source
        # keeps sending new tasks.
        index = 0
        while context.is_active():
            log = self.logs[shard]
            if index < len(log):
                if log[index][1] > resume:
                    yield self.batch(shard, index)
                index += 1
            else:
                time.sleep(0.05)

    def batch(self, shard: int, index: int) -> Response:
        """Batch `index` of `shard`'s log, as the source sends it."""
        tasks, watermark = self.logs[shard][index]
        response = Response()
        for task_id, namespace_id, workflow_id in tasks:
            task = Task(task_type=2, source_task_id=task_id)
            task.history_task_attributes.namespace_id = namespace_id
            task.history_task_attributes.workflow_id = workflow_id
            task.raw_task_info.namespace_id = namespace_id
            task.raw_task_info.workflow_id = workflow_id
            task.raw_task_info.run_id = self.identity(shard, task_id)
            task.raw_task_info.task_id = task_id
            if self.payload:
                task.data.encoding_type = 2
                task.data.data = self.payload
            response.messages.replication_tasks.append(task)
        response.messages.exclusive_high_watermark = watermark
        if self.priorities:
            response.messages.priority = self.priority_of(index)
        return response

    def priority_of(self, index: int) -> int:
        return (1, 10)[index % 2] if self.priorities else 0

    def final_watermark_of_priority(self, shard: int, priority: int) -> int:
        return max(watermark for index, (_, watermark) in enumerate(self.logs[shard])
                   if self.priority_of(index) == priority)


class TargetShard:
    """One shard of a target cluster: opens its stream at `address`, applies and acknowledges what it is sent."""

    def __init__(self, cluster: str, source_cluster: str, shard: int, address: str, acknowledge: bool = True,
                 credentials=None):
        self.shard = shard
        self.acknowledge = acknowledge
        self.applied: list[str] = []
        self.ids: list[int] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.channel = (grpc.secure_channel(address, credentials, options=(("grpc.ssl_target_name_override", "localhost"),))
                        if credentials is not None else grpc.insecure_channel(address))
        self.requests: queue.Queue = queue.Queue()
        metadata = (("temporal-client-cluster-id", cluster), ("temporal-client-shard-id", str(shard)),
                    ("temporal-server-cluster-id", source_cluster), ("temporal-server-shard-id", str(shard)))
        call = self.channel.stream_stream(
            STREAM, request_serializer=Request.SerializeToString, response_deserializer=Response.FromString)
        self.call = call(self._requests(), metadata=metadata)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _requests(self):
        while True:
            item = self.requests.get()
            if item is None:
                return
            yield item

    def _read(self):
        try:
            for response in self.call:
                batch = response.messages
                with self.lock:
                    for task in batch.replication_tasks:
                        if task.source_task_id != task.raw_task_info.task_id:
                            self.errors.append(f"ids differ: {task.source_task_id} {task.raw_task_info.task_id}")
                        if self.ids and task.source_task_id <= self.ids[-1]:
                            self.errors.append(f"id {task.source_task_id} after {self.ids[-1]}")
                        self.ids.append(task.source_task_id)
                        self.applied.append(task.raw_task_info.run_id)
                if self.acknowledge:
                    ack = Request()
                    ack.sync_replication_state.inclusive_low_watermark = batch.exclusive_high_watermark
                    self.requests.put(ack)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                with self.lock:
                    self.errors.append(f"stream ended: {error.code()} {error.details()}")

    def received(self) -> list[str]:
        with self.lock:
            return list(self.applied)

    def close(self):
        # The request iterator ends, the call is cancelled and its reader has stopped before the channel closes:
        # grpcio does not like a channel closed under a call's own threads.
        self.requests.put(None)
        self.call.cancel()
        self.thread.join(timeout=5)
        self.channel.close()
