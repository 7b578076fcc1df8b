"""Writes the seed corpora of the libFuzzer targets under Fuzz/corpus/<name>/ from the project's own fixtures:
the Temporal schema and messages under Tests/Fixtures, the YAML and JSON the tests and docs use, and frames and
conversations built here by hand in each protocol's wire format. Python 3 alone; no protobuf package.

Each target's file in Fuzz/targets says how its input is laid out; the seeds below follow those layouts. Inputs the
fuzzer found worth keeping (crashes, once fixed) live in the same folders under names starting with `found-`; this
script leaves those alone and rewrites the rest. Run from the repository root: `python3 Fuzz/make_corpus.py`.
"""

import gzip
import re
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "Fuzz" / "corpus"
FIXTURES = ROOT / "Tests" / "Fixtures"


# MARK: Protobuf wire format, as much as the seeds need

def varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(data, index):
    value = shift = 0
    while True:
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, index


def fields(data):
    """(number, wire type, value) of each top-level field; values of length-delimited fields are bytes."""
    index = 0
    while index < len(data):
        key, index = read_varint(data, index)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, index = read_varint(data, index)
        elif wire_type == 1:
            value, index = data[index:index + 8], index + 8
        elif wire_type == 2:
            length, index = read_varint(data, index)
            value, index = data[index:index + length], index + length
        elif wire_type == 5:
            value, index = data[index:index + 4], index + 4
        else:
            raise ValueError(f"wire type {wire_type}")
        yield number, wire_type, value


def ld(number, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def vi(number, value):
    return varint(number << 3) + varint(value)


# MARK: The Temporal schema fixture, file by file

SCHEMA = (FIXTURES / "temporal-dev-schema.binpb").read_bytes()
SCHEMA_FILES = {}
for _, _, file_bytes in (f for f in fields(SCHEMA) if f[0] == 1):
    name = next(v.decode() for n, _, v in fields(file_bytes) if n == 1)
    deps = [v.decode() for n, _, v in fields(file_bytes) if n == 3]
    services = [next(sv.decode() for sn, _, sv in fields(v) if sn == 1) for n, _, v in fields(file_bytes) if n == 6]
    package = next((v.decode() for n, _, v in fields(file_bytes) if n == 2), "")
    SCHEMA_FILES[name] = (file_bytes, deps, services, package)


def closure(name):
    """The file and everything it imports, imports first."""
    ordered = []

    def visit(each):
        if each in ordered:
            return
        for dependency in SCHEMA_FILES[each][1]:
            visit(dependency)
        ordered.append(each)

    visit(name)
    return ordered


def descriptor_set(names):
    return b"".join(ld(1, SCHEMA_FILES[name][0]) for name in names)


# A small hand-made schema: a service whose request and response import two more files.
def field_proto(name, number, type_, type_name=None, label=1):
    out = ld(1, name) + vi(3, number) + vi(4, label) + vi(5, type_)
    return out + (ld(6, type_name) if type_name else b"")


def tiny_files():
    blob = ld(1, "DataBlob") + ld(2, field_proto("encoding_type", 1, 5)) + ld(2, field_proto("data", 2, 12))
    common = ld(1, "common.proto") + ld(2, "test.common") + ld(4, blob)
    messages = (ld(1, "messages.proto") + ld(2, "test.v1") + ld(3, "common.proto")
                + ld(4, ld(1, "StartRequest") + ld(2, field_proto("namespace", 1, 9))
                     + ld(2, field_proto("blob", 2, 11, ".test.common.DataBlob")))
                + ld(4, ld(1, "StartResponse") + ld(2, field_proto("run_id", 1, 9))))
    service = (ld(1, "service.proto") + ld(2, "test.v1") + ld(3, "messages.proto")
               + ld(6, ld(1, "WorkflowService") + ld(2, ld(1, "Start") + ld(2, ".test.v1.StartRequest")
                                                      + ld(3, ".test.v1.StartResponse"))))
    return {"common.proto": common, "messages.proto": messages, "service.proto": service}


# MARK: Writing

def write(target, seeds):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if not old.name.startswith("found-"):
            old.unlink()
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode()
        (folder / name).write_bytes(data)
    print(f"{target}: {len(seeds)} seeds")


def fixture_messages():
    """(name, message type, bytes) of the walker and Go-case fixtures."""
    workflow, admin = "temporal.api.workflowservice.v1.", "temporal.server.api.adminservice.v1."
    walker_types = {
        "DescribeNamespaceResponse": workflow + "DescribeNamespaceResponse",
        "GetNamespaceReplicationMessagesResponse": admin + "GetNamespaceReplicationMessagesResponse",
        "GetWorkflowExecutionHistoryResponse": workflow + "GetWorkflowExecutionHistoryResponse",
        "GetWorkflowExecutionRawHistoryV2Response": admin + "GetWorkflowExecutionRawHistoryV2Response",
        "PollActivityTaskQueueResponse": workflow + "PollActivityTaskQueueResponse",
        "PollWorkflowTaskQueueResponse": workflow + "PollWorkflowTaskQueueResponse",
        "RespondWorkflowTaskCompletedRequest": workflow + "RespondWorkflowTaskCompletedRequest",
        "StartWorkflowExecutionRequest": workflow + "StartWorkflowExecutionRequest",
        "StreamWorkflowReplicationMessagesResponse": admin + "StreamWorkflowReplicationMessagesResponse",
    }
    go_types = {
        "ns-respond-workflow-task-completed": workflow + "RespondWorkflowTaskCompletedRequest",
        "ns-poll-workflow-task-queue": workflow + "PollWorkflowTaskQueueResponse",
        "ns-poll-activity-task-queue": workflow + "PollActivityTaskQueueResponse",
        "ns-raw-history-two-blobs": admin + "GetWorkflowExecutionRawHistoryV2Response",
        "ns-describe-namespace": workflow + "DescribeNamespaceResponse",
        "ns-update-namespace": workflow + "UpdateNamespaceResponse",
        "ns-list-namespaces": workflow + "ListNamespacesResponse",
        "ns-stream-history-task": admin + "StreamWorkflowReplicationMessagesResponse",
        "ns-stream-sync-workflow-state": admin + "StreamWorkflowReplicationMessagesResponse",
        "ns-stream-backfill-history": admin + "StreamWorkflowReplicationMessagesResponse",
        "ns-stream-sync-versioned-transition": admin + "StreamWorkflowReplicationMessagesResponse",
        "ns-namespace-replication-full": admin + "GetNamespaceReplicationMessagesResponse",
        "ns-history-event-links": workflow + "GetWorkflowExecutionHistoryResponse",
        "sa-stream-history-task": admin + "StreamWorkflowReplicationMessagesResponse",
        "utf8-raw-history-invalid-failure": admin + "GetWorkflowExecutionRawHistoryV2Response",
    }
    result = []
    for name, type_ in walker_types.items():
        result.append((name, type_, (FIXTURES / "walker" / "messages" / f"{name}.binpb").read_bytes()))
    for name, type_ in go_types.items():
        result.append((name, type_, (FIXTURES / "go-cases" / f"{name}.binpb").read_bytes()))
    return result


# MARK: yamux

def yamux_frame(type_, flags, stream, length, payload=b""):
    return struct.pack(">BBHII", 0, type_, flags, stream, length) + payload


SYN, ACK, FIN, RST = 1, 2, 4, 8
DATA, WINDOW, PING, GO_AWAY = 0, 1, 2, 3


def yamux_seeds():
    seeds = {}

    def raw(control, configuration, *frames):
        """Raw mode: byte 0 = role (bit 0: client) | read size << 2, byte 1 = the session's configuration."""
        return bytes([control, configuration]) + b"".join(frames)

    opened = yamux_frame(WINDOW, SYN, 1, 0)
    conversation = (opened + yamux_frame(DATA, 0, 1, 5, b"hello") + yamux_frame(WINDOW, 0, 1, 4096)
                    + yamux_frame(PING, SYN, 0, 0xBEEF) + yamux_frame(DATA, FIN, 1, 3, b"bye"))
    seeds["raw-server-stream-lifecycle"] = raw(0, 0, conversation)
    seeds["raw-server-stream-lifecycle-bytewise"] = raw(1 << 2, 0, conversation)
    seeds["raw-server-data-with-syn-then-rst"] = raw(
        7 << 2, 3, yamux_frame(DATA, SYN, 3, 3, b"\x01\x02\x03"), yamux_frame(WINDOW, RST, 3, 0))
    seeds["raw-client-accepts-even-ids"] = raw(
        1 | 12 << 2, 0, yamux_frame(WINDOW, SYN, 2, 0), yamux_frame(DATA, 0, 2, 2, b"ok"))
    seeds["raw-backlog-of-one"] = raw(
        0, 0, yamux_frame(WINDOW, SYN, 1, 0), yamux_frame(WINDOW, SYN, 3, 0), yamux_frame(WINDOW, SYN, 5, 0))
    seeds["raw-go-away"] = raw(0, 0, opened, yamux_frame(GO_AWAY, 0, 0, 0), yamux_frame(WINDOW, SYN, 5, 0))
    seeds["raw-ping-answer-unknown"] = raw(1, 4, yamux_frame(PING, ACK, 0, 7))
    seeds["raw-forgotten-stream"] = raw(0, 0, yamux_frame(DATA, 0, 41, 2, b".."), yamux_frame(WINDOW, FIN, 41, 0))
    seeds["raw-larger-window"] = raw(0, 8, yamux_frame(WINDOW, SYN | ACK, 1, 1 << 20))
    # Violations: each must end the session.
    seeds["violation-even-id-from-client"] = raw(0, 0, yamux_frame(WINDOW, SYN, 2, 0))
    seeds["violation-duplicate-syn"] = raw(0, 0, opened, opened)
    seeds["violation-data-on-stream-0"] = raw(0, 0, yamux_frame(DATA, 0, 0, 1, b"x"))
    seeds["violation-ping-on-a-stream"] = raw(0, 0, yamux_frame(PING, SYN, 5, 1))
    seeds["violation-http"] = raw(0, 0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    seeds["violation-version"] = raw(0, 0, b"\x01" + opened[1:])
    seeds["violation-type"] = raw(0, 0, struct.pack(">BBHII", 0, 9, 0, 1, 0))
    seeds["violation-data-after-fin"] = raw(
        0, 0, opened, yamux_frame(WINDOW, FIN, 1, 0), yamux_frame(DATA, 0, 1, 1, b"!"))
    seeds["violation-oversized-frame"] = raw(0, 0, struct.pack(">BBHII", 0, DATA, 0, 1, 0x7FFFFFFF))

    # Command mode (bit 1 of byte 0): see Command in YamuxFuzz.swift.
    def commands(control, configuration, *parts):
        return bytes([2 | control, configuration]) + b"".join(bytes(part) if isinstance(part, list) else part
                                                             for part in parts)

    def deliver(data):
        out = b""
        while data:
            out += bytes([0, min(len(data), 256) - 1]) + data[:256]
            data = data[256:]
        return out

    def frame(type_, flags_byte, stream_byte, length, big=False):
        return bytes([1, type_ | (0x80 if big else 0), flags_byte, stream_byte, length >> 8, length & 0xFF])

    open_stream, advance, write, close, auto_read, other = [3], 2, 4, 5, 6, 7
    seeds["commands-open-write-close"] = commands(
        1, 0, open_stream, frame(WINDOW, ACK, 1, 0), [write, 0, 200], frame(WINDOW, 0, 1, 0xFFFF, big=True),
        [close, 0, 0], frame(WINDOW, FIN, 1, 0))
    seeds["commands-peer-overruns-window"] = commands(
        0, 64, deliver(opened), frame(DATA, 0x30, 1, 0x0100), frame(DATA, 0x30, 1, 0x0100))
    seeds["commands-window-of-1mib"] = commands(
        0, 8 | 64, deliver(opened), frame(DATA, 0x20, 1, 0x4000), [auto_read, 0, 1], frame(DATA, 0x30, 1, 0x0800))
    seeds["commands-keepalive-unanswered"] = commands(
        1, 4, deliver(yamux_frame(WINDOW, SYN, 2, 0)), [advance, 30, advance, 11])
    seeds["commands-close-timeout"] = commands(0, 0, deliver(opened), [close, 0, 1, advance, 200])
    seeds["commands-open-timeout"] = commands(1, 0, open_stream, open_stream, [advance, 76, advance, 0])
    seeds["commands-ping-flood-while-blocked"] = commands(0, 0, [other, 2], frame(PING, SYN, 0, 1) * 70)
    seeds["commands-reset-pending-writes"] = commands(
        0, 16, deliver(opened), [write, 0, 255] * 3, [close, 0, 2], frame(WINDOW, 0, 1, 100))
    seeds["commands-session-close"] = commands(
        0, 0, deliver(opened), [other, 3, write, 0, 1, other, 7], frame(WINDOW, FIN, 1, 0))
    seeds["commands-small-frames"] = commands(0, 32, deliver(opened), [write, 0, 5], frame(WINDOW, 0, 1, 0x1000))
    seeds["commands-half-closure"] = commands(
        0, 128, deliver(yamux_frame(DATA, SYN | FIN, 1, 2, b"hi")), [write, 0, 1, close, 0, 1])
    return seeds


# MARK: gRPC framing

def grpc_message(payload, compressed=False):
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(payload)) + payload


def grpc_seeds():
    seeds = {}
    # byte 0 = message limit (255: 4 KiB), byte 1 = inflate limit / 4, byte 2 = frame sizes - 1, sizes, stream.
    def seed(limit, inflate, sizes, stream):
        return bytes([limit, inflate, len(sizes) - 1]) + bytes(sizes) + stream

    messages = fixture_messages()
    small = [data for _, _, data in messages if len(data) < 250]
    stream = b"".join(grpc_message(data) for data in small[:6])
    seeds["fixtures-whole-frames"] = seed(255, 255, [255], stream)
    seeds["fixtures-bytewise"] = seed(255, 255, [1], stream)
    seeds["fixtures-odd-frames"] = seed(250, 64, [3, 0, 7, 64, 1], stream)
    for name, _, data in messages[:9]:
        seeds[f"message-{name}"] = seed(255, 255, [100, 5], grpc_message(data))
    seeds["empty-messages"] = seed(0, 0, [2, 3], grpc_message(b"") * 4)
    seeds["at-the-limit-then-over"] = seed(16, 4, [4], grpc_message(b"a" * 16) + grpc_message(b"b" * 17))
    seeds["huge-length"] = seed(16, 4, [2], b"\x00\xff\xff\xff\xff")
    seeds["prefix-split-by-empty-frames"] = seed(64, 16, [1, 0, 2, 0, 2], grpc_message(b"0123456789"))
    for name, _, data in messages[:4]:
        seeds[f"gzip-{name}"] = seed(255, 255, [255, 40], grpc_message(gzip.compress(data, mtime=0), True))
    text = b"namespace walker-ns " * 40
    seeds["deflate-at-the-inflate-limit"] = seed(255, len(text) // 4, [255], grpc_message(zlib.compress(text), True))
    seeds["deflate-bomb"] = seed(255, 8, [255], grpc_message(zlib.compress(b"\x00" * 100000), True))
    seeds["gzip-truncated"] = seed(255, 255, [255], grpc_message(gzip.compress(b"walker-ns" * 20, mtime=0)[:-6], True))
    return seeds


# MARK: PluginKit

def proto_wire_seeds():
    seeds = {}
    for index, (name, _, data) in enumerate(fixture_messages()):
        seeds[name] = bytes([index * 37 & 0xFF, index * 11 & 0xFF]) + data
        seeds[name + "-second-edit"] = bytes([0x80 | index * 13 & 0x7F, 3]) + data
    seeds["non-minimal-lengths"] = bytes([1, 2]) + ld(1, b"") + b"\x0a\x81\x00" + b"\x12\x83\x80\x00abc" + vi(3, 1)
    fixed64, fixed32 = b"\x11" + b"\x01" * 8, b"\x1d" + b"\x02" * 4
    seeds["every-wire-type"] = bytes([0, 0x53]) + vi(1, 150) + fixed64 + fixed32 + ld(4, ld(5, "x"))
    seeds["truncated"] = bytes([0, 0]) + ld(1, ld(2, "namespace"))[:-3]
    return seeds


def proto_schema_seeds():
    seeds = {"temporal-dev-schema": SCHEMA}
    for name in ["temporal/api/namespace/v1/message.proto", "temporal/server/api/persistence/v1/cluster_metadata.proto",
                 "temporal/server/api/persistence/v1/predicates.proto", "temporal/api/filter/v1/message.proto",
                 "temporal/api/version/v1/message.proto", "temporal/server/api/health/v1/message.proto",
                 "temporal/api/enums/v1/event_type.proto", "google/protobuf/duration.proto"]:
        seeds["closure-" + name.replace("/", "-").removesuffix(".proto")] = descriptor_set(closure(name))
    seeds["tiny-service"] = b"".join(ld(1, data) for data in tiny_files().values())
    return seeds


def walker_seeds():
    seeds = {}
    order = [
        "temporal.api.workflowservice.v1.DescribeNamespaceResponse",
        "temporal.server.api.adminservice.v1.GetNamespaceReplicationMessagesResponse",
        "temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse",
        "temporal.server.api.adminservice.v1.GetWorkflowExecutionRawHistoryV2Response",
        "temporal.api.workflowservice.v1.PollActivityTaskQueueResponse",
        "temporal.api.workflowservice.v1.PollWorkflowTaskQueueResponse",
        "temporal.api.workflowservice.v1.RespondWorkflowTaskCompletedRequest",
        "temporal.api.workflowservice.v1.StartWorkflowExecutionRequest",
        "temporal.server.api.adminservice.v1.StreamWorkflowReplicationMessagesResponse",
        "temporal.api.workflowservice.v1.UpdateNamespaceResponse",
        "temporal.api.workflowservice.v1.ListNamespacesResponse",
    ]  # the order of fixtureTypes in WalkerFuzz.swift
    for name, type_, data in fixture_messages():
        index = order.index(type_)
        rules = [2] if name.startswith("sa-") else [0, 1] if name.startswith("ns-") else [0, 1, 2]
        for rule in rules:
            seeds[f"{name}-rules-{rule}"] = bytes([rule, 0, index]) + data
    return seeds


def options_json_seeds():
    seeds = {"renames": (FIXTURES / "walker" / "renames.json").read_bytes()}
    texts = set()
    for path in sorted((ROOT / "Tests").rglob("*.swift")):
        for literal in re.findall(r'#"(.*?)"#', path.read_text()):
            if literal[:1] in "{[" and "\\(" not in literal:
                texts.add(literal)
    for index, text in enumerate(sorted(texts)):
        seeds[f"tests-{index:03}"] = text
    return seeds


# MARK: Reflection

def services_response(names):
    return ld(6, b"".join(ld(1, ld(1, name)) for name in names))


def files_response(files):
    return ld(4, b"".join(ld(1, data) for data in files))


def error_response(code, message):
    return ld(7, vi(1, code) + ld(2, message))


def conversation(messages, limit=16384):
    """The messages in the target's layout, as many whole ones as fit in its largest input."""
    out = b"\x00"
    for message in messages:
        framed = struct.pack(">H", len(message)) + message
        if len(out) + len(framed) > limit:
            break
        out += framed
    return out


def pull_by_filename(service_file, listed):
    """The messages a server that answers one file at a time sends to a pull of `service_file`."""
    messages = [services_response(listed), files_response([SCHEMA_FILES[service_file][0]])]
    have = [service_file]
    while True:
        missing = []
        for name in have:
            for dependency in SCHEMA_FILES[name][1]:
                if dependency not in have and dependency not in missing:
                    missing.append(dependency)
        if not missing:
            return messages
        for name in missing:
            messages.append(files_response([SCHEMA_FILES[name][0]]))
            have.append(name)


def reflection_seeds():
    tiny = tiny_files()
    operator = "temporal/api/operatorservice/v1/service.proto"
    operator_service = SCHEMA_FILES[operator][3] + "." + SCHEMA_FILES[operator][2][0]
    return {
        "tiny-all-at-once": conversation([
            services_response(["test.v1.WorkflowService", "grpc.reflection.v1.ServerReflection"]),
            files_response(list(tiny.values())),
        ]),
        "tiny-by-filename": conversation([
            services_response(["test.v1.WorkflowService"]),
            files_response([tiny["service.proto"]]),
            files_response([tiny["messages.proto"]]),
            files_response([tiny["common.proto"]]),
        ]),
        "tiny-error-answer": conversation([
            services_response(["test.v1.WorkflowService"]), error_response(5, "not found"),
        ]),
        "only-health": conversation([services_response(["grpc.health.v1.Health"])]),
        # As much as fits in 16 KiB: the listing, the service file and its first imports.
        "operator-service-by-filename": conversation(pull_by_filename(operator, [operator_service])),
        "file-tiny-service": b"\x01" + b"".join(ld(1, data) for data in tiny.values()),
        "file-namespace-without-services": b"\x01" + descriptor_set(closure("temporal/api/namespace/v1/message.proto")),
    }


# MARK: Configuration

def swift_multiline_literals(path):
    """The text of each \"\"\" literal without interpolation, with the closing delimiter's indentation removed."""
    result = []
    for body, indent in re.findall(r'"""\n(.*?)\n([ \t]*)"""', path.read_text(), re.S):
        if "\\(" in body:
            continue
        result.append("\n".join(line[len(indent):] for line in body.split("\n")))
    return result


MINIMAL_CONFIG = """clusterConnections:
  - name: a
    local:
      connectionType: tcp
      tcpClient: {address: "a:1"}
      tcpServer: {address: ":2"}
    remote:
      connectionType: tcp
      tcpClient: {address: "b:1"}
      tcpServer: {address: ":3"}
"""


def config_seeds():
    seeds = {"examples-dev-server": (ROOT / "examples" / "dev-server.yaml").read_text()}
    for document in ["README.md", "docs/PLUGINS.md"]:
        for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", (ROOT / document).read_text(), re.S)):
            seeds[f"{Path(document).stem.lower()}-{index}"] = block
    tests = ["ConfigLoaderTests", "GoTranslationKeysTests", "SchemaConfigTests", "TLSSetupTests"]
    for test in tests:
        for index, literal in enumerate(swift_multiline_literals(ROOT / "Tests" / "HostTests" / f"{test}.swift")):
            text = literal if "clusterConnections" in literal else MINIMAL_CONFIG + literal + "\n"
            seeds[f"{test}-{index:02}"] = text
    return seeds


# MARK: HTTP/2 conversations (h2-engine)

def h2_frame(type_, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    """A literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2): any decoder reads it."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def h2_block(fields):
    return b"".join(hpack_literal(name, value) for name, value in fields)


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_REQUEST = [(":method", "POST"), (":scheme", "http"), (":path", "/svc/Method"), (":authority", "proxy"),
              ("content-type", "application/grpc"), ("te", "trailers")]


def h2_engine_seeds():
    """The first byte is the target's control byte (bit 0: the engine's role, 0 server; bit 7: one read; else bits
    1-6 + 1 the read size), the rest what the peer sends."""
    message = grpc_message(b"\x0a\x05hello")
    settings = h2_frame(4, 0, 0, struct.pack(">HI", 4, 65535))
    ack = h2_frame(4, 1, 0)
    server = (H2_PREFACE + settings + ack
              + h2_frame(1, 4, 1, h2_block(H2_REQUEST)) + h2_frame(0, 1, 1, message)
              + h2_frame(1, 4, 3, h2_block(H2_REQUEST)) + h2_frame(0, 0, 3, message)
              + h2_frame(8, 0, 3, struct.pack(">I", 100)) + h2_frame(0, 0, 3, message)
              + h2_frame(1, 5, 3, h2_block([("x-trailer", "1")]))
              + h2_frame(6, 0, 0, b"pingping") + h2_frame(3, 0, 5, struct.pack(">I", 8)))
    continuation = (H2_PREFACE + settings + h2_frame(1, 0, 1, h2_block(H2_REQUEST[:3]))
                    + h2_frame(9, 4, 1, h2_block(H2_REQUEST[3:])) + h2_frame(0, 0x9, 1, b"\x02" + message + b"\x00\x00"))
    client = (settings + ack + h2_frame(1, 4, 1, h2_block([(":status", "200"), ("content-type", "application/grpc")]))
              + h2_frame(8, 0, 0, struct.pack(">I", 1 << 20)) + h2_frame(8, 0, 1, struct.pack(">I", 1 << 20))
              + h2_frame(0, 0, 1, message) + h2_frame(1, 5, 1, h2_block([("grpc-status", "0")]))
              + h2_frame(1, 5, 3, h2_block([(":status", "200"), ("grpc-status", "14")]))
              + h2_frame(7, 0, 0, struct.pack(">II", 3, 0)))
    return {
        "server-calls": b"\x80" + server,
        "server-calls-cut": b"\x0e" + server,
        "server-continuation-padded": b"\x80" + continuation,
        "client-calls": b"\x81" + client,
        "client-calls-cut": b"\x15" + client,
    }


def hpack_seeds():
    """The first byte is the target's control byte (bits 0-1: the table size this end allows, 0, 64, 256 or 4096),
    then header blocks of one connection, each after a byte with its length. RFC 7541's examples bring Huffman
    strings, indexing and evictions (C.6 at 256 bytes)."""
    def blocks(*hexes):
        out = b""
        for text in hexes:
            block = bytes.fromhex(text)
            out += bytes([len(block)]) + block
        return out
    c4 = blocks("828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf",
                "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf")
    c6 = blocks("488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae"
                "82ae43d3", "4883640effc1c0bf",
                "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5"
                "af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007")
    c2 = blocks("400a637573746f6d2d6b65790d637573746f6d2d686561646572", "040c2f73616d706c652f70617468",
                "100870617373776f726406736563726574", "82")
    grpc = h2_block(H2_REQUEST)
    return {
        "rfc7541-c4": b"\x03" + c4,
        "rfc7541-c6": b"\x02" + c6,
        "rfc7541-c2": b"\x03" + c2,
        "grpc-literals": b"\x03" + bytes([len(grpc)]) + grpc + bytes([len(grpc)]) + grpc,
        "size-updates": b"\x01" + blocks("20", "3f21", "2082", "3fe11f"),
    }


def replication_seeds():
    """Routing's replication messages, as Python protobuf encoded them with the dev server's schema
    (Tests/Fixtures/replication/cases.json); byte 0 picks the target shard count and the first id."""
    import json
    cases = json.loads((FIXTURES / "replication" / "cases.json").read_text())
    seeds = {}
    for layout in (0x00, 0x12, 0x2b, 0xff):
        seeds[f"batch-{layout:02x}"] = bytes([layout]) + bytes.fromhex(cases["response"])
    seeds["built-batch"] = b"\x01" + bytes.fromhex(cases["builtResponse"])
    seeds["sync-state"] = b"\x03" + bytes.fromhex(cases["request"])
    for index, task in enumerate(cases["tasks"]):
        # One task alone in a batch, with a watermark.
        seeds[f"task-{index}"] = b"\x02" + ld(1, ld(1, bytes.fromhex(task["bytes"])) + vi(2, 1048583))
    return seeds


if __name__ == "__main__":
    write("replication", replication_seeds())
    write("hpack", hpack_seeds())
    write("h2-engine", h2_engine_seeds())
    write("yamux", yamux_seeds())
    write("grpc-framing", grpc_seeds())
    write("proto-wire", proto_wire_seeds())
    write("proto-schema", proto_schema_seeds())
    write("walker", walker_seeds())
    write("options-json", options_json_seeds())
    write("reflection", reflection_seeds())
    write("config", config_seeds())
