"""Render ``gen/catalog.py``: the well-known event registry and typed event classes.

Read from the compiled descriptors of ``proto/common/events/v1`` (their ``kind``, ``platforms``
and ``pii`` options and doc comments), never maintained by hand. Called by ``generate.py``.
"""

from __future__ import annotations

import keyword
import textwrap
from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "common.events.v1"
SERVER = "PLATFORM_SERVER"
_KIND, _PII, _PLATFORMS = 50000, 50001, 50002
_FIELD_TYPES = {
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "str",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int",
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
}


@dataclass(frozen=True)
class _Field:
    name: str
    annotation: str
    required: bool
    pii: bool
    doc: str


@dataclass(frozen=True)
class _Event:
    kind: str
    message: str
    module: str
    platforms: tuple[str, ...]
    fields: tuple[_Field, ...]
    doc: str

    @property
    def class_name(self) -> str:
        return self.message.removesuffix("Properties")

    @property
    def for_server(self) -> bool:
        return not self.platforms or SERVER in self.platforms


def attribute(field_name: str) -> str:
    """The Python attribute for a proto field (``class`` becomes ``class_``)."""
    return field_name + "_" if keyword.iskeyword(field_name) else field_name


def _options_reader(fds: descriptor_pb2.FileDescriptorSet) -> tuple[object, object]:
    """Option message classes in a private pool that knows the catalog's extensions."""
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:
        pool.Add(file)
    msg_opts = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("google.protobuf.MessageOptions")
    )
    field_opts = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("google.protobuf.FieldOptions")
    )
    return pool, (msg_opts, field_opts)


def _comments(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    return {
        tuple(loc.path): " ".join(loc.leading_comments.split())
        for loc in file.source_code_info.location
        if loc.leading_comments
    }


def collect(fds: descriptor_pb2.FileDescriptorSet) -> list[_Event]:
    pool, (msg_opts_cls, field_opts_cls) = _options_reader(fds)
    kind_ext = pool.FindExtensionByName(f"{PACKAGE}.kind")
    platforms_ext = pool.FindExtensionByName(f"{PACKAGE}.platforms")
    pii_ext = pool.FindExtensionByName(f"{PACKAGE}.pii")
    validate_field = pool.FindExtensionByName("buf.validate.field")
    events = []
    for file in fds.file:
        if file.package != PACKAGE or not file.message_type:
            continue
        docs = _comments(file)
        module = file.name.removesuffix(".proto").rsplit("/", 1)[-1] + "_pb2"
        for index, message in enumerate(file.message_type):
            options = msg_opts_cls.FromString(message.options.SerializeToString())
            if not options.HasExtension(kind_ext):
                continue
            fields = []
            for findex, field in enumerate(message.field):
                fopts = field_opts_cls.FromString(field.options.SerializeToString())
                if field.type_name == ".google.protobuf.Duration":
                    annotation = "datetime.timedelta | float"
                else:
                    annotation = _FIELD_TYPES[field.type]
                has_rules = fopts.HasExtension(validate_field)
                rules = fopts.Extensions[validate_field] if has_rules else None
                fields.append(
                    _Field(
                        name=field.name,
                        annotation=annotation,
                        required=bool(rules and rules.required),
                        pii=fopts.HasExtension(pii_ext) and fopts.Extensions[pii_ext],
                        doc=docs.get((4, index, 2, findex), ""),
                    )
                )
            events.append(
                _Event(
                    kind=options.Extensions[kind_ext],
                    message=message.name,
                    module=module,
                    platforms=tuple(
                        platforms_ext.enum_type.values_by_number[p].name
                        for p in options.Extensions[platforms_ext]
                    ),
                    fields=tuple(fields),
                    doc=docs.get((4, index), ""),
                )
            )
    return sorted(events, key=lambda e: e.kind)


def _docstring(text: str, indent: str) -> list[str]:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') or "A well-known event."
    lines = textwrap.wrap(text, 96 - len(indent))
    if len(lines) == 1:
        return [f'{indent}"""{lines[0]}"""']
    return [f'{indent}"""{lines[0]}', *(indent + line for line in lines[1:]), f'{indent}"""']


def render(events: list[_Event]) -> str:
    server = [e for e in events if e.for_server]
    other = [e for e in events if not e.for_server]
    modules = sorted({e.module for e in server})
    out = [
        '"""Well-known event catalog: generated by scripts/generate.py from proto/. Do not edit.',
        "",
        "One frozen dataclass per server-side well-known event kind (tagged PLATFORM_SERVER or",
        "untagged), ``SERVER_KINDS`` mapping each kind to its properties message, and",
        "``OTHER_PLATFORM_KINDS`` for kinds meant only for other platforms.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import dataclasses",
        "import datetime",
        "from typing import ClassVar",
        "",
        "from google.protobuf.message import Message",
        "",
        "from pug_grpc.gen.common.events.v1 import (",
        *(f"    {m}," for m in modules),
        ")",
        "",
        "__all__ = [",
        '    "EVENT_CLASSES",',
        '    "OTHER_PLATFORM_KINDS",',
        '    "SERVER_KINDS",',
        '    "WellKnownEvent",',
        *(f'    "{e.class_name}",' for e in sorted(server, key=lambda e: e.class_name)),
        "]",
        "",
        "",
        "@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)",
        "class WellKnownEvent:",
        '    """Base of the typed well-known events: ``KIND`` is sent as the event kind."""',
        "",
        "    KIND: ClassVar[str]",
        "    PROPERTIES: ClassVar[type[Message]]",
        "    PII_FIELDS: ClassVar[frozenset[str]]",
    ]
    for event in server:
        out += ["", "", "@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)"]
        out.append(f"class {event.class_name}(WellKnownEvent):")
        out += _docstring(event.doc, "    ")
        out += [
            "",
            f'    KIND: ClassVar[str] = "{event.kind}"',
            f"    PROPERTIES: ClassVar[type[Message]] = {event.module}.{event.message}",
        ]
        pii = ", ".join(f'"{f.name}"' for f in event.fields if f.pii)
        pii_set = f"frozenset({{{pii}}})" if pii else "frozenset()"
        out.append(f"    PII_FIELDS: ClassVar[frozenset[str]] = {pii_set}")
        for field in sorted(event.fields, key=lambda f: not f.required):
            out.append("")
            name = attribute(field.name)
            if field.required:
                out.append(f"    {name}: {field.annotation}")
            else:
                out.append(f"    {name}: {field.annotation} | None = None")
            if field.doc:
                out += _docstring(field.doc, "    ")
    out += ["", "", "EVENT_CLASSES: dict[str, type[WellKnownEvent]] = {"]
    out += [f'    "{e.kind}": {e.class_name},' for e in server]
    out += ["}", '"""Server kind to its typed event class."""', ""]
    out += ["SERVER_KINDS: dict[str, type[Message]] = {"]
    out += [f'    "{e.kind}": {e.module}.{e.message},' for e in server]
    out += ["}", '"""Server kind to its properties message."""', ""]
    out += ["OTHER_PLATFORM_KINDS: frozenset[str] = frozenset(", "    {"]
    out += [f'        "{e.kind}",' for e in other]
    out += ["    }", ")", '"""Kinds tagged only for other platforms: sent as custom events."""']
    return "\n".join(out) + "\n"
