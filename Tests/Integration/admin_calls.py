"""Calls to Temporal's AdminService, which the Python SDK does not ship: message classes from the schema fixture.

Owns: a descriptor pool built from `Tests/Fixtures/temporal-dev-schema.binpb` (the schema the dev server serves by
reflection) and unary calls by method name over a grpc channel, returning the decoded response.
"""

from __future__ import annotations

from functools import lru_cache

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from plugin_build import REPO_ROOT

ADMIN_SERVICE = "temporal.server.api.adminservice.v1.AdminService"


@lru_cache(maxsize=1)
def schema_pool() -> descriptor_pool.DescriptorPool:
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString((REPO_ROOT / "Tests/Fixtures/temporal-dev-schema.binpb").read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


def message_class(full_name: str):
    return message_factory.GetMessageClass(schema_pool().FindMessageTypeByName(full_name))


def admin_call(channel: grpc.Channel, method: str, request: dict | None = None, metadata=(), timeout: float = 30):
    """AdminService.`method` with a request built from keyword fields; the response message."""
    service = schema_pool().FindServiceByName(ADMIN_SERVICE)
    descriptor = service.FindMethodByName(method)
    request_class = message_class(descriptor.input_type.full_name)
    response_class = message_class(descriptor.output_type.full_name)
    call = channel.unary_unary(
        f"/{ADMIN_SERVICE}/{method}",
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    return call(request_class(**(request or {})), metadata=metadata, timeout=timeout)
