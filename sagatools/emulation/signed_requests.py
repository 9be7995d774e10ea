"""The local endpoint's door: a request reaches moto only if it is signed (AWS Signature Version 4) with
the endpoint's own credentials; any other is answered 403, in the words AWS uses, before moto reads it.

Binding 127.0.0.1 keeps other machines out, not the other users of this one. The signature is recomputed
with botocore's own signer over the request as it arrived (its method, path, query, signed headers and
body) and compared in constant time, so neither a guessed secret nor the access key id alone gets in.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

if TYPE_CHECKING:
    from sagatools.fake_credentials import EndpointCredentials

ALGORITHM = "AWS4-HMAC-SHA256"
# As AWS: a signature older or newer than this is refused (a request seen once cannot be sent again later).
MAX_SKEW_SECONDS = 15 * 60
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 +Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request, *SignedHeaders=(?P<headers>[a-z0-9;_.-]+), *Signature=(?P<signature>[0-9a-f]{64})$"
)
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")

StartResponse = Callable[..., Any]
Application = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# Why a request is refused, and the code each of AWS's protocols gives it: JSON, query/XML, S3.
MISSING, UNKNOWN_KEY, BAD_SIGNATURE = "missing", "unknown key", "bad signature"
CODES = {
    MISSING: ("MissingAuthenticationTokenException", "MissingAuthenticationToken", "AccessDenied"),
    UNKNOWN_KEY: ("UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId"),
    BAD_SIGNATURE: ("InvalidSignatureException", "SignatureDoesNotMatch", "SignatureDoesNotMatch"),
}


class Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class OwnerOnly:
    """WSGI middleware in front of moto's server app: only its owner's signed requests pass."""

    def __init__(
        self, app: Application, credentials: EndpointCredentials, where: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.app, self.credentials, self.clock = app, credentials, clock
        self.hint = f" (this local endpoint serves only its owner, whose tools sign with the credentials in {where})"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            self.check(environ)
        except Refused as refused:
            return refusal(environ, start_response, refused.reason, f"{refused}{self.hint}")
        return self.app(environ, start_response)

    def check(self, environ: dict[str, Any]) -> None:
        """Refused unless signed with the endpoint's credentials; the body, once read, is put back for moto."""
        signed = AUTHORIZATION.match(environ.get("HTTP_AUTHORIZATION", "").strip())
        if signed is None:
            raise Refused(MISSING, "Request is missing Authentication Token (an AWS Signature Version 4 one)")
        # Before the body is read: a stranger's request costs the endpoint nothing more.
        if not hmac.compare_digest(signed["key"].encode(), self.credentials.access_key_id.encode()):
            raise Refused(UNKNOWN_KEY, "The security token included in the request is invalid")
        amz_date = environ.get("HTTP_X_AMZ_DATE", "")
        try:
            moment = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise Refused(BAD_SIGNATURE, "The request has no valid X-Amz-Date header") from None
        if abs(self.clock() - moment) > MAX_SKEW_SECONDS:
            raise Refused(BAD_SIGNATURE, f"Signature expired: {amz_date} is more than 15 minutes from the time here")
        body = _body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        declared = environ.get("HTTP_X_AMZ_CONTENT_SHA256", "")
        if HEX_SHA256.fullmatch(declared) and declared != hashlib.sha256(body).hexdigest():
            raise Refused(BAD_SIGNATURE, "The body does not match the X-Amz-Content-SHA256 it was signed with")
        expected = self.signature(environ, body, signed, amz_date)
        if not hmac.compare_digest(expected.encode(), signed["signature"].encode()):
            raise Refused(
                BAD_SIGNATURE, "The request signature we calculated does not match the signature you provided"
            )

    def signature(self, environ: dict[str, Any], body: bytes, signed: re.Match[str], amz_date: str) -> str:
        """The signature botocore's signer computes for this request, as it arrived, with the endpoint's secret."""
        headers = {}
        for name in signed["headers"].split(";"):
            value = environ.get(_environ_key(name))
            if value is None:
                raise Refused(BAD_SIGNATURE, f"The signed header {name} is not in the request")
            headers[name] = _as_sent(value)
        url = f"http://{headers.get('host', '')}{environ.get('RAW_URI') or environ.get('REQUEST_URI') or '/'}"
        request = AWSRequest(method=environ["REQUEST_METHOD"], url=url, data=body, headers=headers)
        request.context["timestamp"] = amz_date
        credentials = Credentials(self.credentials.access_key_id, self.credentials.secret_access_key)
        # S3 signs its path as sent; every other service signs it encoded once more.
        signer_class = S3SigV4Auth if signed["service"] == "s3" else SigV4Auth
        signer = signer_class(credentials, signed["service"], signed["region"])
        if signed["date"] != amz_date[:8]:
            raise Refused(BAD_SIGNATURE, "The credential's date is not the request's")
        canonical = signer.canonical_request(request)
        return str(signer.signature(signer.string_to_sign(request, canonical), request))


def _environ_key(header: str) -> str:
    key = header.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"


def _as_sent(value: str) -> str:
    """A header's value as the client signed it: the server decoded its bytes as latin-1, clients sign UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):  # chunked: read to its end
        return bytes(stream.read())
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refused(BAD_SIGNATURE, "The request's Content-Length is not a number") from None
    return bytes(stream.read(length)) if length > 0 else b""


def _dialect(environ: dict[str, Any]) -> int:
    """0: JSON (the JSON and REST-JSON protocols), 1: query/XML, 2: S3's XML."""
    scope = environ.get("HTTP_AUTHORIZATION", "")
    service = scope.split("/")[3] if scope.count("/") >= 4 else ""
    if "json" in environ.get("CONTENT_TYPE", "") or "HTTP_X_AMZ_TARGET" in environ or service == "lambda":
        return 0
    return 2 if service == "s3" else 1


def refusal(environ: dict[str, Any], start_response: StartResponse, reason: str, message: str) -> list[bytes]:
    """403, with the error AWS's protocols all parse: its code in x-amzn-ErrorType and in the body."""
    dialect = _dialect(environ)
    code, request_id = CODES[reason][dialect], str(uuid.uuid4())
    if dialect == 0:
        body = json.dumps({"__type": code, "message": message}).encode()
        content_type = "application/x-amz-json-1.1"
    else:
        error = f"<Code>{code}</Code><Message>{escape(message)}</Message>"
        if dialect == 2:
            document = f"<Error>{error}<RequestId>{request_id}</RequestId></Error>"
        else:
            document = (
                '<ErrorResponse xmlns="https://aws.amazon.com/">'
                f"<Error><Type>Sender</Type>{error}</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            )
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n{document}'.encode()
        content_type = "text/xml"
    if environ.get("REQUEST_METHOD") == "HEAD":
        body = b""
    start_response(
        "403 Forbidden",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", request_id),
        ],
    )
    return [body]
