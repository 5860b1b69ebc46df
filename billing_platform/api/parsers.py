"""The API's JSON parser: DRF's, with the nesting limit every JSON input of Tripod has
(``billing_platform.json_input``). Too deep is a 400 ``json_too_deep`` problem."""

from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import get_encoding  # type: ignore[attr-defined]  # newer than the stubs
from rest_framework.utils import json as drf_json

from billing_platform.json_input import json_load


class JSONParser(parsers.JSONParser):
    def parse(self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            return json_load(text, parse_constant=drf_json.strict_constant if self.strict else None)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError("JSON parse error - %s" % exc) from None
