"""The local endpoint serves only its owner: a request must be signed with the credentials its start made
(sagatools/emulation/signed_requests.py), and another user of the machine can neither use it nor read them.

The endpoint here is the local server's own app with its door (local_server.bind), served in this process:
the same as `./build.sh local start` serves, without the seconds of a start. tests/e2e/test_local_cloud.py
checks that a running endpoint refuses moto's fake credentials and a guessed secret.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from werkzeug.serving import make_server

from sagatools.emulation.local_server import bind
from sagatools.emulation.signed_requests import OwnerOnly
from sagatools.fake_credentials import FAKE_CREDENTIALS, EndpointCredentials
from tests.helpers import endpoint_client

REGION = "us-west-2"
STRANGER = "saga-stranger"  # a system user with no home and no login, made once per machine
FAKE = EndpointCredentials(FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[str, EndpointCredentials]]:
    credentials = EndpointCredentials.made()
    server = bind(0, credentials, "the test's credentials file")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.port}", credentials
    server.shutdown()
    server.server_close()


def client(url: str, service: str, credentials: EndpointCredentials, **config: Any):
    return endpoint_client(url, service, REGION, credentials, Config(retries={"total_max_attempts": 1}, **config))


def refusal(call: Callable[[], object]) -> tuple[int, str]:
    """The HTTP status and error code of a call that must be refused."""
    with pytest.raises(ClientError) as refused:
        call()
    return refused.value.response["ResponseMetadata"]["HTTPStatusCode"], refused.value.response["Error"]["Code"]


def a_table(url: str, credentials: EndpointCredentials) -> str:
    """A table of the owner's, holding one item."""
    dynamodb = client(url, "dynamodb", credentials)
    name = f"owned-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "saga_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "saga_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=name, Item={"saga_id": {"S": "t-1"}, "status": {"S": "CONFIRMED"}})
    return name


def test_the_owners_signed_requests_are_served_in_every_protocol_the_tools_use(endpoint):
    # Given the endpoint's own credentials
    url, credentials = endpoint
    # When its owner calls DynamoDB (JSON), CloudFormation (query), S3 (REST-XML: its path signed as sent)
    # and Lambda (REST-JSON: its path encoded once more to be signed)
    table = a_table(url, credentials)
    item = client(url, "dynamodb", credentials).get_item(TableName=table, Key={"saga_id": {"S": "t-1"}})["Item"]
    stacks = client(url, "cloudformation", credentials).describe_stacks()["Stacks"]
    s3 = client(url, "s3", credentials)
    bucket, key = f"owned-{uuid.uuid4().hex[:8]}", "a folder/é+b=1.zip"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=bucket, Key=key, Body=b"zip" * 1000)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="a folder/é")["Contents"]
    missing = f"arn:aws:lambda:{REGION}:123456789012:function:no-such-function"
    lambda_answer = refusal(lambda: client(url, "lambda", credentials).get_function(FunctionName=missing))
    # Then each is answered by moto, as it would be without the door
    assert item["status"]["S"] == "CONFIRMED"
    assert isinstance(stacks, list)
    assert [entry["Key"] for entry in listed] == [key]
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"zip" * 1000
    assert lambda_answer == (404, "ResourceNotFoundException")  # served: no such function, not refused


@pytest.mark.parametrize(
    "how",
    ["unsigned", "moto's fake credentials", "the right key with a guessed secret", "a body changed after signing"],
)
def test_a_request_not_signed_by_the_owner_is_refused_and_changes_nothing(endpoint, how):
    # Given the owner's table
    url, credentials = endpoint
    table = a_table(url, credentials)
    expected = {
        "unsigned": "MissingAuthenticationTokenException",
        "moto's fake credentials": "UnrecognizedClientException",
        "the right key with a guessed secret": "InvalidSignatureException",
        "a body changed after signing": "InvalidSignatureException",
    }[how]
    if how == "unsigned":
        dynamodb = client(url, "dynamodb", credentials, signature_version=UNSIGNED)
    elif how == "moto's fake credentials":
        dynamodb = client(url, "dynamodb", FAKE)
    elif how == "the right key with a guessed secret":
        dynamodb = client(url, "dynamodb", EndpointCredentials(credentials.access_key_id, "guessed"))
    else:
        dynamodb = client(url, "dynamodb", credentials)
        other = f"other-{table.removeprefix('owned-')}"  # as long: only the body differs from what was signed

        def tamper(request: Any, **_: object) -> None:
            request.body = request.body.replace(table.encode(), other.encode())

        dynamodb.meta.events.register("before-send.dynamodb", tamper)
    # When it deletes the table, or reads it
    deleted = refusal(lambda: dynamodb.delete_table(TableName=table))
    read = refusal(lambda: dynamodb.get_item(TableName=table, Key={"saga_id": {"S": "t-1"}}))
    # Then both are refused (403, in AWS's words) and the table and its item are as they were
    assert (deleted, read) == ((403, expected), (403, expected))
    owner = client(url, "dynamodb", credentials)
    assert owner.get_item(TableName=table, Key={"saga_id": {"S": "t-1"}})["Item"]["status"]["S"] == "CONFIRMED"


def test_the_refusal_says_in_one_sentence_where_the_owners_credentials_are(endpoint):
    url, _ = endpoint
    with pytest.raises(ClientError) as refused:
        client(url, "stepfunctions", FAKE).list_state_machines()
    message = refused.value.response["Error"]["Message"]
    assert "serves only its owner" in message
    assert "the test's credentials file" in message
    assert "\n" not in message


@pytest.mark.parametrize(("offset_minutes", "served"), [(-20, False), (20, False), (1, True)])
def test_a_signature_made_more_than_15_minutes_from_the_endpoints_time_is_refused(offset_minutes, served):
    # Given a door whose clock is `offset_minutes` from the signer's (in front of an app that answers anything)
    credentials = EndpointCredentials.made()

    def answers(_environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [b'{"TableNames": []}']

    door = OwnerOnly(answers, credentials, "here", clock=lambda: time.time() + offset_minutes * 60)
    server = make_server("127.0.0.1", 0, door, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        dynamodb = client(f"http://127.0.0.1:{server.port}", "dynamodb", credentials)
        # When its owner signs a request now
        if served:
            assert dynamodb.list_tables()["TableNames"] == []
        else:
            # Then it is refused as expired
            with pytest.raises(ClientError, match="Signature expired"):
                dynamodb.list_tables()
    finally:
        server.shutdown()
        server.server_close()


def _stranger_or_skip() -> tuple[int, int]:
    """The uid and gid of an unprivileged user other than this one, made if missing (root only)."""
    if os.geteuid() != 0:
        pytest.skip("another user can only be made and become by root: the second-user check is skipped")
    if not all(shutil.which(tool) for tool in ("useradd", "setpriv", "curl")):
        pytest.skip("useradd, setpriv and curl are needed to act as another user: the second-user check is skipped")
    if subprocess.run(["id", "-u", STRANGER], capture_output=True, check=False).returncode != 0:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", STRANGER],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode not in (0, 9):  # 9: made meanwhile by another run
            pytest.skip(f"the user {STRANGER} could not be made ({made.stderr.strip()}): the check is skipped")
    ids = [subprocess.run(["id", flag, STRANGER], capture_output=True, text=True, check=True) for flag in ("-u", "-g")]
    return int(ids[0].stdout), int(ids[1].stdout)


def as_stranger(ids: tuple[int, int], *command: str) -> subprocess.CompletedProcess[str]:
    uid, gid = ids
    return subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *command],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LANG": "C"},
    )


def curl(ids: tuple[int, int], url: str, *arguments: str) -> tuple[int, str]:
    """The HTTP status and AWS error code another user gets from the endpoint."""
    done = as_stranger(ids, "curl", "-sS", "--max-time", "10", "-D", "-", "-o", "/dev/null", *arguments, url)
    assert done.returncode == 0, done.stderr
    status_line, *header_lines = done.stdout.splitlines()
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers.get("x-amzn-errortype", "")


@contextlib.contextmanager
def open_folder() -> Iterator[Path]:
    """A folder any user can enter (as a checkout is), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="owner-only-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder)


def a_zip() -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "import os\ndef handler(event, context):\n    return os.getuid()\n")
    return base64.b64encode(buffer.getvalue()).decode()


def test_another_local_user_can_neither_use_the_endpoint_nor_read_its_credentials(endpoint):
    stranger = _stranger_or_skip()
    url, credentials = endpoint
    table = a_table(url, credentials)
    with open_folder() as checkout:
        # Given the endpoint's credentials written where a start writes them, in a folder left open before
        state = checkout / ".runtest" / "local"
        state.mkdir(parents=True, mode=0o755)
        state.chmod(0o755)
        credentials.write(state / "credentials")
        # When another user of the machine tries to read them
        read = as_stranger(stranger, "cat", str(state / "credentials"))
        listed = as_stranger(stranger, "ls", str(state))
        # Then it cannot: the folder is made 0700 and the file is 0600
        assert read.returncode != 0
        assert "Permission denied" in read.stderr
        assert listed.returncode != 0
        assert (stat.S_IMODE(state.stat().st_mode), stat.S_IMODE((state / "credentials").stat().st_mode)) == (
            0o700,
            0o600,
        )
    # When it calls the endpoint: unsigned, with moto's fake credentials, with the key and a guessed secret
    guessed = f"{credentials.access_key_id}:guessed-secret"
    dynamodb = ["-H", "Content-Type: application/x-amz-json-1.0"]
    key = json.dumps({"TableName": table, "Key": {"saga_id": {"S": "t-1"}}})
    function = f"stranger-{uuid.uuid4().hex[:8]}"
    create = json.dumps(
        {
            "FunctionName": function,
            "Runtime": "python3.12",
            "Role": "arn:aws:iam::123456789012:role/stranger",
            "Handler": "app.handler",
            "Code": {"ZipFile": a_zip()},
        }
    )
    answers = {
        "read, unsigned": curl(
            stranger, url, *dynamodb, "-H", "X-Amz-Target: DynamoDB_20120810.GetItem", "--data", key
        ),
        "read, fake credentials": curl(
            stranger,
            url,
            *dynamodb,
            *("-H", "X-Amz-Target: DynamoDB_20120810.GetItem", "--data", key),
            *("--aws-sigv4", f"aws:amz:{REGION}:dynamodb", "--user", "testing:testing"),
        ),
        "delete, guessed secret": curl(
            stranger,
            url,
            *dynamodb,
            *("-H", "X-Amz-Target: DynamoDB_20120810.DeleteTable", "--data", json.dumps({"TableName": table})),
            *("--aws-sigv4", f"aws:amz:{REGION}:dynamodb", "--user", guessed),
        ),
        "create a function, fake credentials": curl(
            stranger,
            f"{url}/2015-03-31/functions",
            *("-H", "Content-Type: application/json", "--data", create),
            *("--aws-sigv4", f"aws:amz:{REGION}:lambda", "--user", "testing:testing"),
        ),
        "invoke a function, guessed secret": curl(
            stranger,
            f"{url}/2015-03-31/functions/{function}/invocations",
            *("--data", "{}", "--aws-sigv4", f"aws:amz:{REGION}:lambda", "--user", guessed),
        ),
        "moto's dump of everything, unsigned": curl(stranger, f"{url}/moto-api/data.json"),
    }
    # Then every call is refused, the owner's table and its item are as they were, and no function was made
    assert answers == {
        "read, unsigned": (403, "MissingAuthenticationTokenException"),
        "read, fake credentials": (403, "UnrecognizedClientException"),
        "delete, guessed secret": (403, "InvalidSignatureException"),
        "create a function, fake credentials": (403, "UnrecognizedClientException"),
        "invoke a function, guessed secret": (403, "InvalidSignatureException"),
        "moto's dump of everything, unsigned": (403, "MissingAuthenticationToken"),
    }
    owner = client(url, "dynamodb", credentials)
    assert owner.get_item(TableName=table, Key={"saga_id": {"S": "t-1"}})["Item"]["status"]["S"] == "CONFIRMED"
    lambdas = client(url, "lambda", credentials)
    assert refusal(lambda: lambdas.get_function(FunctionName=function)) == (404, "ResourceNotFoundException")
    # and the same call signed by curl's SigV4 signer, as the owner, with the owner's secret is served
    assert curl_as_owner(url, credentials, key) == 200


def curl_as_owner(url: str, credentials: EndpointCredentials, key: str) -> int:
    done = subprocess.run(
        [
            *("curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", "--config", "-"),
            *("-H", "Content-Type: application/x-amz-json-1.0", "-H", "X-Amz-Target: DynamoDB_20120810.GetItem"),
            *("--data", key, "--aws-sigv4", f"aws:amz:{REGION}:dynamodb", url),
        ],
        input=f'user = "{credentials.access_key_id}:{credentials.secret_access_key}"\n',  # never on a command line
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_start_refuses_a_state_folder_that_belongs_to_another_user(monkeypatch):
    from sagatools.deployed import local_commands, local_endpoint

    uid, gid = _stranger_or_skip()
    with open_folder() as checkout:
        # Given a state folder made by another user (who could read what is written there)
        state = checkout / ".runtest" / "local"
        state.mkdir(parents=True)
        os.chown(state, uid, gid)
        monkeypatch.setattr(local_endpoint, "STATE_DIR", state)
        monkeypatch.setattr(local_endpoint, "STATE_FILE", state / "endpoint.json")
        # When the endpoint is started
        out, err = io.StringIO(), io.StringIO()
        code = local_commands.main(["start"], out, err)
        # Then it is not, in one sentence, and no credentials were written there
        assert code == 2
        assert err.getvalue().count("\n") == 1
        assert "belongs to another user" in err.getvalue()
        assert not (state / "credentials").exists()
