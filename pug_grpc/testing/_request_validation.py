"""Request validation with protovalidate, made to survive the enum-name CEL caveat.

protovalidate 2.1 cannot resolve CEL expressions that name an enum value by its full name
(``common.v1.FilterOperator.FILTER_OPERATOR_IN``): it raises ``EvaluationError`` and stops
evaluating the whole message. The contract README notes that the same expression with the
enum's number evaluates correctly, so we build a second descriptor pool whose CEL expressions
have the names replaced by numbers, and validate a re-parsed copy of the affected messages
there. Anything that still fails to evaluate is logged at debug and treated as not validated
for that call, never as a crash or a refusal.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from typing import Any

import protovalidate
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message, message_factory

from pug_grpc.gen.buf.validate import validate_pb2
from pug_grpc.testing._status import FieldViolation

__all__ = ["RequestValidator", "refusal_message", "rewrite_enum_names"]

_log = logging.getLogger("pug_grpc.testing")

_ENUM_REFERENCE = re.compile(r"\b(?:[a-z][a-z0-9_]*\.)+(?:[A-Z][A-Za-z0-9_]*\.)+[A-Z][A-Z0-9_]*\b")


def rewrite_enum_names(expression: str, pool: descriptor_pool.DescriptorPool) -> str:
    """Replace each fully qualified enum value name in a CEL expression by its number."""

    def number(match: re.Match[str]) -> str:
        enum_name, _, value_name = match.group(0).rpartition(".")
        try:
            enum = pool.FindEnumTypeByName(enum_name)
        except KeyError:
            return match.group(0)
        value = enum.values_by_name.get(value_name)
        return match.group(0) if value is None else str(value.number)

    return _ENUM_REFERENCE.sub(number, expression)


def _rewrite_rules(rules: Sequence[Any], pool: descriptor_pool.DescriptorPool) -> bool:
    changed = False
    for rule in rules:
        new = rewrite_enum_names(rule.expression, pool)
        if new != rule.expression:
            rule.expression = new
            changed = True
    return changed


def _rewrite_message(
    proto: descriptor_pb2.DescriptorProto, pool: descriptor_pool.DescriptorPool
) -> bool:
    changed = False
    if proto.options.HasExtension(validate_pb2.message):
        changed |= _rewrite_rules(proto.options.Extensions[validate_pb2.message].cel, pool)
    for field in proto.field:
        if field.options.HasExtension(validate_pb2.field):
            changed |= _rewrite_rules(field.options.Extensions[validate_pb2.field].cel, pool)
    for nested in proto.nested_type:
        changed |= _rewrite_message(nested, pool)
    return changed


class RequestValidator:
    """Validate request messages; thread-safe, caches per message type."""

    def __init__(self) -> None:
        self._validator = protovalidate.Validator()
        self._rewritten_validator = protovalidate.Validator()
        self._pool = descriptor_pool.DescriptorPool()
        self._added: set[str] = set()
        self._rewritten_files: set[str] = set()
        self._needs_copy: dict[str, bool] = {}
        self._lock = threading.Lock()

    def violations(self, request: message.Message) -> list[FieldViolation]:
        """The request's rule violations; empty when valid or when the rules cannot be evaluated."""
        target = request
        with self._lock:
            copy_class = self._copy_class(request.DESCRIPTOR)
        validator = self._validator
        if copy_class is not None:
            target = copy_class.FromString(request.SerializeToString())
            validator = self._rewritten_validator
        try:
            found = validator.collect_violations(target)
        except protovalidate.EvaluationError as exc:
            _log.debug(
                "protovalidate could not evaluate a rule of %s (%s); treated as not validated",
                request.DESCRIPTOR.full_name,
                exc,
            )
            return []
        return [_convert(v) for v in found]

    def _copy_class(self, desc: Any) -> type[message.Message] | None:
        needs = self._needs_copy.get(desc.full_name)
        if needs is None:
            self._add_file(desc.file)
            needs = self._closure_rewritten(desc, set())
            self._needs_copy[desc.full_name] = needs
        if not needs:
            return None
        return message_factory.GetMessageClass(self._pool.FindMessageTypeByName(desc.full_name))

    def _closure_rewritten(self, desc: descriptor.Descriptor, seen: set[str]) -> bool:
        if desc.full_name in seen:
            return False
        seen.add(desc.full_name)
        if desc.file.name in self._rewritten_files:
            return True
        return any(
            f.message_type is not None and self._closure_rewritten(f.message_type, seen)
            for f in desc.fields
        )

    def _add_file(self, file: descriptor.FileDescriptor) -> None:
        if file.name in self._added:
            return
        for dependency in file.dependencies:
            self._add_file(dependency)
        proto = descriptor_pb2.FileDescriptorProto.FromString(file.serialized_pb)
        changed = False
        for message_proto in proto.message_type:
            changed |= _rewrite_message(message_proto, descriptor_pool.Default())
        self._pool.Add(proto)
        self._added.add(file.name)
        if changed:
            self._rewritten_files.add(file.name)


def _convert(violation: protovalidate.Violation) -> FieldViolation:
    proto = violation.proto
    elements = proto.field.elements if proto.field is not None else ()
    return FieldViolation(
        field=".".join(str(e.field_name) for e in elements),
        description=proto.message or proto.rule_id,
        reason=proto.rule_id,
        at=_indexed_path(elements),
    )


def _indexed_path(elements: Sequence[Any]) -> str:
    parts: list[str] = []
    for element in elements:
        text = str(element.field_name)
        subscript = element.subscript
        if subscript is not None:
            key = subscript.value
            text += f"[{key!r}]" if isinstance(key, str) else f"[{key}]"
        parts.append(text)
    return ".".join(parts)


def refusal_message(violations: Sequence[FieldViolation]) -> str:
    """The status message of a refused request: the first violation, located, and a count."""
    first = violations[0]
    where = f"{first.at or first.field}: " if (first.at or first.field) else ""
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    return f"invalid request: {where}{first.description}{more}"
