"""The awsJson1_1 codec, driven by the ECR service model vendored from botocore.

Input is checked against the model once, generically: structure, required members, types,
min/max lengths and values, enums and patterns (botocore checks only some of these client
side; raw clients check none). Output is walked through the output shape: only modelled
members, timestamps as epoch-second numbers, blobs as base64, absent members omitted.
Operations therefore receive plain Python values and return plain dicts.

The model is a copy of one botocore release's ECR ``service-2.json`` kept in ``api/model/``
(``source.json`` says which; ``scripts/vendor_ecr_model.py`` updates it), read with botocore's
own ``ServiceModel``: validation and coverage do not move when the installed botocore does.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from importlib import resources
from typing import Any

from botocore.model import OperationModel, ServiceModel, Shape

from ecr_emulator.core import errors

TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
# The largest request ECR takes is an UploadLayerPart of 20 MiB, base64-encoded in JSON.
MAX_BODY_BYTES = 32 * 1024 * 1024
# Bounds what parsing a body may allocate: a 32 MiB body of tiny JSON values would otherwise
# become several hundred MiB of Python objects. Counted as the bytes that open or separate
# values; the largest real request (a 4 MiB manifest in PutImage) has about 150,000.
MAX_JSON_SEPARATORS = 300_000


MODEL = resources.files("ecr_emulator.api") / "model"


@functools.cache
def service_model() -> ServiceModel:
    return ServiceModel(json.loads((MODEL / "service-2.json").read_bytes()), service_name="ecr")


@functools.cache
def model_source() -> dict[str, Any]:
    """Where the vendored model came from (botocore version, digests)."""
    return json.loads((MODEL / "source.json").read_bytes())


@functools.cache
def operation_names() -> frozenset[str]:
    return frozenset(service_model().operation_names)


def operation_model(name: str) -> OperationModel:
    return service_model().operation_model(name)


@functools.cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _constraint(path: str, reason: str) -> errors.InvalidParameterException:
    return errors.InvalidParameterException.constraint(path, reason)


def _type_error(path: str, expected: str) -> errors.SerializationException:
    return errors.SerializationException(f"Expected {expected} for '{path}'")


def parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    if sum(body.count(c) for c in (b"{", b"[", b",")) > MAX_JSON_SEPARATORS:
        raise errors.SerializationException(
            f"The request body holds more than {MAX_JSON_SEPARATORS} JSON values, more than any ECR request"
        )
    try:
        data = json.loads(body)
    except RecursionError as exc:
        raise errors.SerializationException("The request body nests JSON too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.SerializationException(f"Could not parse the request body as JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise errors.SerializationException("The request body must be a JSON object")
    return data


def validate_input(op: OperationModel, data: dict[str, Any]) -> dict[str, Any]:
    shape = op.input_shape
    if shape is None:
        return {}
    return _validate_structure(shape, data, "")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _validate_structure(shape: Shape, value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _type_error(path or "body", "a JSON object")
    out: dict[str, Any] = {}
    for name in shape.required_members:
        if value.get(name) is None:
            raise _constraint(_join(path, name), "Member must not be null")
    for name, member in shape.members.items():
        if name in value and value[name] is not None:
            out[name] = _validate(member, value[name], _join(path, name))
    return out


def _check_unicode(value: str, path: str) -> None:
    """JSON may escape half of a surrogate pair (``"\\ud800"``), which is no character at all."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise errors.SerializationException(
            f"'{path}' is not valid Unicode: it contains an unpaired surrogate escape"
        ) from exc


def _check_length(shape: Shape, length: int, path: str) -> None:
    meta = shape.metadata
    if "min" in meta and length < meta["min"]:
        raise _constraint(path, f"must have length greater than or equal to {meta['min']}")
    if "max" in meta and length > meta["max"]:
        raise _constraint(path, f"must have length less than or equal to {meta['max']}")


def _validate(shape: Shape, value: Any, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _validate_structure(shape, value, path)
    if kind == "list":
        if not isinstance(value, list):
            raise _type_error(path, "a JSON array")
        _check_length(shape, len(value), path)
        return [_validate(shape.member, item, f"{path}.{i + 1}.member") for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise _type_error(path, "a JSON object")
        _check_length(shape, len(value), path)
        return {
            _validate(shape.key, k, f"{path}.key"): _validate(shape.value, v, f"{path}.{k}")
            for k, v in value.items()
        }
    if kind == "string":
        if not isinstance(value, str):
            raise _type_error(path, "a string")
        if not value.isascii():
            _check_unicode(value, path)
        if "\x00" in value:
            raise errors.SerializationException(f"'{path}' contains a NUL character")
        _check_length(shape, len(value), path)
        if shape.enum and value not in shape.enum:
            raise _constraint(path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = shape.metadata.get("pattern")
        if pattern and not _pattern(pattern).fullmatch(value):
            raise _constraint(path, f"must satisfy regular expression '{pattern}'")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(path, "an integer")
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                raise _type_error(path, "an integer")
            value = int(value)
        meta = shape.metadata
        if "min" in meta and value < meta["min"]:
            raise _constraint(path, f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            raise _constraint(path, f"Member must have value less than or equal to {meta['max']}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _type_error(path, "a boolean")
        return value
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(path, "a number")
        return float(value)
    if kind == "blob":
        if not isinstance(value, str):
            raise _type_error(path, "a base64 string")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise errors.SerializationException(f"'{path}' is not valid base64") from exc
        _check_length(shape, len(data), path)
        return data
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(path, "an epoch-seconds number")
        return float(value)
    return value


def serialize_output(op: OperationModel, result: dict[str, Any]) -> dict[str, Any]:
    shape = op.output_shape
    if shape is None:
        return {}
    return _serialize(shape, result)


def _serialize(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            v = value.get(name) if isinstance(value, dict) else None
            if v is not None:
                out[name] = _serialize(member, v)
        return out
    if kind == "list":
        return [_serialize(shape.member, v) for v in value]
    if kind == "map":
        return {k: _serialize(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        return round(float(value), 3)
    if kind == "blob":
        return base64.b64encode(value).decode()
    if kind in ("integer", "long"):
        return int(value)
    return value


def error_body(exc: errors.EcrError) -> dict[str, Any]:
    body: dict[str, Any] = {"__type": exc.code, "message": exc.message}
    body.update(exc.extra)
    return body
