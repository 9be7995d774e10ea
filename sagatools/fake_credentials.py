"""The credentials of every local run: the embedded stack, the local endpoint and the clients and tools
that talk to it. moto accepts any; these are the values its documentation uses."""

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
