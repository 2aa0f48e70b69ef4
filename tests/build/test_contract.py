"""The compiled descriptors of proto/ must equal Pug's wire contract (pug-api/contract.json)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor import FieldDescriptor, FileDescriptor

from tests.support.protos import CONTRACT, import_pb2, proto_files

pytestmark = pytest.mark.skipif(
    not CONTRACT.exists(),
    reason=f"contract not found at {CONTRACT} (only the Pug API checkout has it)",
)

_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SINT64: "sint64",
    FieldDescriptor.TYPE_ENUM: "enum",
    FieldDescriptor.TYPE_MESSAGE: "message",
}


def _options(options: Any) -> dict[str, Any]:
    found = json_format.MessageToDict(options, preserving_proto_field_name=True)
    # protobuf 6.31 writes a repeated extension's name without brackets: name them all alike.
    for extension, _ in options.ListFields():
        bracketed = f"[{extension.full_name}]"
        if extension.is_extension and bracketed not in found and extension.name in found:
            found[bracketed] = found.pop(extension.name)
    return found


def _type_ref(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        return "." + field.message_type.full_name
    if field.enum_type is not None:
        return "." + field.enum_type.full_name
    return _SCALARS[field.type]


def _field(field: FieldDescriptor) -> dict[str, Any]:
    out: dict[str, Any] = {"name": field.name, "number": field.number}
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        out["type"] = "map"
        out["map_key"] = _type_ref(message.fields_by_name["key"])
        out["map_value"] = _type_ref(message.fields_by_name["value"])
    else:
        out["type"] = _SCALARS[field.type]
        if message is not None or field.enum_type is not None:
            out["type_name"] = _type_ref(field)
        if field.is_repeated:
            out["repeated"] = True
    oneof = field.containing_oneof
    if oneof is not None:
        out["oneof"] = oneof.name
    elif field.has_presence and message is None:
        out["explicit_presence"] = True
    opts = _options(field.GetOptions())
    if opts:
        out["options"] = opts
    return out


def _enum(enum: Any) -> dict[str, Any]:
    return {
        "name": enum.name,
        "full_name": enum.full_name,
        "values": [{"name": v.name, "number": v.number} for v in enum.values],
    }


def _message(message: Any) -> dict[str, Any]:
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)
    out: dict[str, Any] = {
        "name": message.name,
        "full_name": message.full_name,
        "fields": [_field(f) for f in message.fields],
    }
    opts = _options(message.GetOptions())
    if opts:
        out["options"] = opts
    if message.oneofs:
        oneofs = []
        for oneof in message.oneofs:
            entry: dict[str, Any] = {"name": oneof.name}
            oneof_opts = _options(oneof.GetOptions())
            if oneof_opts:
                entry["options"] = oneof_opts
            oneofs.append(entry)
        out["oneofs"] = oneofs
    if message.enum_types:
        out["nested_enums"] = [_enum(e) for e in message.enum_types]
    if proto.reserved_range:
        out["reserved_ranges"] = [[r.start, r.end - 1] for r in proto.reserved_range]
    if proto.reserved_name:
        out["reserved_names"] = list(proto.reserved_name)
    return out


def _file(fd: FileDescriptor) -> dict[str, Any]:
    proto = descriptor_pb2.FileDescriptorProto()
    fd.CopyToProto(proto)
    out: dict[str, Any] = {
        "file": fd.name,
        "package": fd.package,
        "edition": descriptor_pb2.Edition.Name(proto.edition).removeprefix("EDITION_"),
        "imports": [d.name for d in fd.dependencies],
    }
    if fd.message_types_by_name:
        out["messages"] = [_message(m) for m in fd.message_types_by_name.values()]
    if fd.enum_types_by_name:
        out["enums"] = [_enum(e) for e in fd.enum_types_by_name.values()]
    if fd.extensions_by_name:
        exts = []
        for ext in fd.extensions_by_name.values():
            entry = {
                "name": ext.name,
                "full_name": ext.full_name,
                "number": ext.number,
                "extendee": "." + ext.containing_type.full_name,
                "type": _SCALARS[ext.type],
            }
            if ext.enum_type is not None or ext.message_type is not None:
                entry["type_name"] = _type_ref(ext)
            if ext.is_repeated:
                entry["repeated"] = True
            elif ext.has_presence:
                entry["explicit_presence"] = True
            exts.append(entry)
        out["extensions"] = exts
    if fd.services_by_name:
        services = []
        for service in fd.services_by_name.values():
            methods = []
            for method in service.methods:
                entry = {
                    "name": method.name,
                    "path": f"/{service.full_name}/{method.name}",
                    "input": "." + method.input_type.full_name,
                    "output": "." + method.output_type.full_name,
                }
                mproto = descriptor_pb2.MethodDescriptorProto()
                method.CopyToProto(mproto)
                if mproto.client_streaming:
                    entry["client_streaming"] = True
                if mproto.server_streaming:
                    entry["server_streaming"] = True
                methods.append(entry)
            services.append(
                {"name": service.name, "full_name": service.full_name, "methods": methods}
            )
        out["services"] = services
    return out


def _normalise(value: Any) -> Any:
    """Sort lists of named things so declaration order does not matter, and unify numbers."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normalise(v) for v in value]
        if items and all(isinstance(i, dict) and ("name" in i or "file" in i) for i in items):
            return sorted(items, key=lambda i: str(i.get("file", i.get("name"))))
        return items
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _contract() -> dict[str, dict[str, Any]]:
    data = json.loads(CONTRACT.read_text())
    return {f["file"]: f for f in data["files"]}


def test_same_files() -> None:
    assert sorted(_contract()) == proto_files()


@pytest.mark.parametrize("proto_file", sorted(_contract()) if CONTRACT.exists() else [])
def test_file_matches_contract(proto_file: str) -> None:
    expected = _normalise(_contract()[proto_file])
    actual = _normalise(_file(import_pb2(proto_file).DESCRIPTOR))
    for key in ("package", "edition"):
        assert actual[key] == expected[key]
    assert sorted(actual["imports"]) == sorted(expected["imports"])
    for key in ("messages", "enums", "extensions", "services"):
        exp = {i["name"]: i for i in expected.get(key, [])}
        act = {i["name"]: i for i in actual.get(key, [])}
        assert sorted(act) == sorted(exp), f"{proto_file}: {key} differ"
        for name, wanted in exp.items():
            assert act[name] == wanted, f"{proto_file}: {key[:-1]} {name} differs"
