"""A request's steering: a method of the registry (`attnsteer.steering.methods`) with its parameters, given as
flat fields (`method`, `alpha`, `boost`, ...) or as one `steering` object, built by `make_method` on top of the
server's default method (its parameters stay when the request keeps its method).

Errors name the field (OpenAI's `param`; `steering.<name>` inside the object): `method` for an unknown
method (with the registry's closest name), the parameter itself for a parameter of another method or a
value the method refuses.
"""

from __future__ import annotations

from typing import Any

from attnsteer.errors import AttnsteerError
from attnsteer.heads.head_config import HeadConfig
from attnsteer.model_info import model_shape
from attnsteer.server.request_error import RequestError, blame
from attnsteer.server.schemas import SteeringFields
from attnsteer.steerer import Steerer
from attnsteer.steering.config import RowSteering
from attnsteer.steering.methods import (
    SteeringMethod,
    make_method,
    method_defaults,
    method_parameters,
    steering_method_names,
)

NESTED = "steering."  # the prefix of the fields inside the `steering` object


def parse_heads(spec: object, steerer: Steerer, param: str = "heads") -> HeadConfig:
    """The request's `heads`, validated against the model; no file paths (the server reads no files)."""
    if isinstance(spec, str) and spec.strip().endswith(".json"):
        raise RequestError(param, f"{param}: a server does not read head files; give 'all', layers '12,13', "
                                  "'L.H' pairs '11.2,12.0' or {\"layer\": [heads]}")
    with blame(param):
        return HeadConfig.parse(spec, *model_shape(steerer.model))  # type: ignore[arg-type]


def requested(fields: SteeringFields) -> tuple[dict[str, Any], str]:
    """(method and parameters the request gives, the prefix of their field names: "" flat, NESTED in the object)."""
    flat = fields.given()
    if fields.steering is None:
        return flat, ""
    if flat:
        raise RequestError("steering", f"steering: give the method and its parameters as one `steering` object "
                                       f"or as flat fields, not both (got steering and {', '.join(flat)})")
    return fields.steering.given(), NESTED


def method_for(given: dict[str, Any], steerer: Steerer, prefix: str = "") -> SteeringMethod:
    """The method `given` names (default: the steerer's) with its parameters; bad input -> RequestError."""
    parameters = dict(given)
    name = parameters.pop("method", None) or steerer.method.name
    with blame(prefix + "method"):
        allowed = method_parameters(name)  # an unknown name: the registry's error, with the closest name
    foreign = [key for key in parameters if key not in allowed]
    if foreign:
        _refuse_foreign(name, steerer, parameters, prefix, foreign[0], named="method" in given)
    if "heads" in parameters:
        parameters["heads"] = parse_heads(parameters["heads"], steerer, prefix + "heads")
    kept = steerer.method.parameters() if name == steerer.method.name else {}
    try:
        return make_method(name, steerer.model, **{**kept, **parameters})
    except AttnsteerError as error:
        param = prefix + (_refused(name, steerer, kept, parameters) or "method")
        raise RequestError(param, f"{param}: {error}") from None


def _refuse_foreign(name: str, steerer: Steerer, parameters: dict[str, Any], prefix: str, key: str,
                    named: bool) -> None:
    """Raise make_method's error for `key`, a parameter of another method (it names the method and its
    parameters); `named`: whether the request named the method (if not, say it is the server's default)."""
    try:
        make_method(name, steerer.model, **parameters)
    except AttnsteerError as error:
        hint = "" if named else f" (the server's default method; give {prefix}method to choose another)"
        raise RequestError(prefix + key, f"{prefix}{key}: {error}{hint}") from None


def _refused(name: str, steerer: Steerer, kept: dict[str, Any], parameters: dict[str, Any]) -> str | None:
    """The first parameter that method `name` refuses on its own (None: none alone, e.g. PASTA on a model
    without a shipped head set and no heads given). Runs only after the method refused the request."""
    for key, value in parameters.items():
        try:
            make_method(name, steerer.model, **{**kept, key: value})
        except AttnsteerError:
            return key
    return None


def steering_for(fields: SteeringFields, steerer: Steerer, emphasised: bool) -> RowSteering | None:
    """Steering for a request, None when nothing is emphasised (then steering fields are an error)."""
    given, prefix = requested(fields)
    row = method_for(given, steerer, prefix).row() if given else steerer.row_steering
    if emphasised:
        return row
    if fields.emphasis_markup:
        raise RequestError("emphasis_markup", "emphasis_markup is true but no **...** span was found")
    named = ["steering"] if fields.steering is not None else list(given)
    if named:
        raise RequestError("emphasis", f"{', '.join(named)} given but nothing is emphasised: add emphasis "
                                       "(substrings or {start, end} spans) or emphasis_markup")
    return None


def steering_methods() -> list[dict[str, Any]]:
    """[{"name", "parameters": {parameter: default}}] for every registered method (None where the model decides,
    as PASTA's shipped heads): what the playground offers."""
    return [{"name": name, "parameters": method_defaults(name)} for name in steering_method_names()]
