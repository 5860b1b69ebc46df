"""The API's JSON renderer: DRF's ``JSONRenderer`` output, byte for byte, written by orjson.

DRF's renderer runs ``json.dumps`` with its encoder; on the large reads (a subscription's devices,
a page of invoices) that is a good part of the request. orjson writes the same bytes several times
faster: compact separators, UTF-8 as is (``UNICODE_JSON``), U+2028 and U+2029 escaped, and every
value orjson does not write itself (datetimes, dates and times, Decimals, lazy strings, anything
DRF's ``JSONEncoder.default`` knows) handed to DRF's own encoder, so it reads the same.

Where orjson could write something differently, the standard renderer writes it instead: an
``indent`` asked for in the Accept header, a float below 1e-4 (orjson's notation differs: "1e-7"
against "1e-07"; the API writes amounts as strings, so none is expected), integers beyond 64 bits,
and whatever orjson refuses. The one difference left: a NaN or infinite float, refused by DRF's
strict JSON (a 500), is written ``null`` by orjson. The API has no float fields.
"""

import json
import re
from decimal import Decimal
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_encoder = JSONEncoder()


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        # DRF writes a bare Decimal as a float (serializers give strings): json's float notation.
        return orjson.Fragment(json.dumps(float(obj), allow_nan=False))
    return _encoder.default(obj)


# What orjson writes for a float whose notation may differ from json's (below 1e-4: "1e-7",
# "0.000025"): a number token, after ":", "[" or "," and before ",", "]" or "}" (the output is
# compact). When found, perhaps inside a string, the standard renderer writes the response.
_FLOAT_DOUBT = re.compile(rb"(?<=[:\[,])-?(?:[0-9]+(?:\.[0-9]+)?e-[0-9]+|0\.0000[0-9]+)(?=[,\]}])")


class OrjsonRenderer(JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        if (
            self.ensure_ascii
            or not self.compact
            or not self.strict
            or self.get_indent(accepted_media_type or "", renderer_context or {}) is not None
        ):
            return bytes(super().render(data, accepted_media_type, renderer_context))
        try:
            rendered = orjson.dumps(data, default=_default, option=OPTIONS)
        except orjson.JSONEncodeError:
            # What json.dumps does with it (an error, or a big integer): the standard renderer's.
            return bytes(super().render(data, accepted_media_type, renderer_context))
        if _FLOAT_DOUBT.search(rendered):
            return bytes(super().render(data, accepted_media_type, renderer_context))
        if b"\xe2\x80\xa8" in rendered or b"\xe2\x80\xa9" in rendered:
            rendered = rendered.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return rendered
