"""Protobuf messages declared in code: descriptors built at import, no generated code, no ``protoc``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F: TypeAlias = descriptor_pb2.FieldDescriptorProto


def field(
    package: str,
    name: str,
    number: int,
    kind: int,
    *,
    repeated: bool = False,
    type_name: str = "",
    oneof: int | None = None,
) -> F:
    """One field; ``type_name`` names a message or enum of ``package``."""
    label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
    declared = F(name=name, number=number, type=kind, label=label)
    if type_name:
        declared.type_name = f".{package}.{type_name}"
    if oneof is not None:
        declared.oneof_index = oneof
    return declared


def enum(name: str, values: dict[str, int]) -> descriptor_pb2.EnumDescriptorProto:
    """A nested enum."""
    return descriptor_pb2.EnumDescriptorProto(
        name=name, value=[descriptor_pb2.EnumValueDescriptorProto(name=k, number=v) for k, v in values.items()]
    )


def message(
    name: str,
    *fields: F,
    enums: tuple[descriptor_pb2.EnumDescriptorProto, ...] = (),
    oneofs: tuple[str, ...] = (),
) -> descriptor_pb2.DescriptorProto:
    """A message of ``fields``."""
    return descriptor_pb2.DescriptorProto(
        name=name,
        field=list(fields),
        enum_type=list(enums),
        oneof_decl=[descriptor_pb2.OneofDescriptorProto(name=o) for o in oneofs],
    )


def message_classes(
    file_name: str, package: str, messages: Sequence[descriptor_pb2.DescriptorProto]
) -> Callable[[str], Any]:
    """Build a proto3 file of ``messages``; return a lookup of its message classes by name."""
    proto = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax="proto3")
    proto.message_type.extend(messages)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
