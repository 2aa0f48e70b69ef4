"""``identify``/``alias``: check the identity fields, build the request, hand it off.

Like ``track()``, these never raise: a refusal goes through :mod:`pug_grpc._ingest.rejections`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pug_grpc._ingest.engine import Engine
from pug_grpc._ingest.properties import to_struct
from pug_grpc._ingest.rejections import refuse_closed, reject_identify, reject_unreadable
from pug_grpc._ingest.validation import coerce_id, identify_problem
from pug_grpc.gen.sdk.profiles.v1 import profiles_pb2

__all__ = ["alias", "identify"]


def identify(
    engine: Engine,
    external_id: Any,
    traits: Mapping[str, Any] | None,
    anonymous_id: str | None,
    device_id: str | None,
) -> None:
    """The path of ``identify()``: an ``IdentifyRequest`` queued, or the call refused."""
    try:
        if not engine.accepting:
            refuse_closed(engine, "identify")
            return
        external = coerce_id(external_id)
        anonymous = "" if anonymous_id is None else anonymous_id
        device = "" if device_id is None else device_id
        problem = identify_problem(external, anonymous, device)
        if not problem and traits is not None and not isinstance(traits, Mapping):
            problem = f"traits must be a mapping, not {type(traits).__name__}"
        if problem:
            reject_identify(engine, problem, external, anonymous, device)
            return
        request = profiles_pb2.IdentifyRequest()
        request.external_id = external  # type: ignore[assignment]
        # Empty fields stay unset: a set empty string is checked by its rules.
        if anonymous:
            request.anonymous_id = anonymous
        if device:
            request.device_id = device
        if traits:
            request.traits.CopyFrom(to_struct(traits))
        engine.submit(request)
    except Exception as exc:  # arguments whose own methods raise (hostile input)
        reject_unreadable(engine, "identify", exc)


def alias(engine: Engine, anonymous_id: Any, external_id: Any) -> None:
    """The path of ``alias()``: an identify that must name the anonymous id."""
    try:
        if not anonymous_id:
            reject_identify(engine, "alias needs an anonymous_id", external_id, "", "")
            return
    except Exception as exc:  # an anonymous_id whose truth value raises
        reject_unreadable(engine, "alias", exc)
        return
    identify(engine, external_id, None, anonymous_id, None)
