"""The local endpoint's own seams (sagatools/emulation/local_server.py: CloudFormation, Lambda running the
deployed zip, the server), and those of werkzeug and botocore every process of the tools shares
(speedups.py, sagatools/botocore_data.py)."""

from __future__ import annotations

from botocore import loaders
from moto import settings as moto_settings
from moto.awslambda import utils as lambda_utils
from moto.awslambda.models import LambdaFunction
from moto.cloudformation.models import CloudFormationBackend
from moto.cloudformation.responses import CloudFormationResponse
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.stepfunctions.parser.asl.utils import boto_client
from werkzeug.routing.rules import Rule

from sagatools.emulation.seams.seam import Seam, parameters, source

LOCAL_AND_SHARED_SEAMS: tuple[Seam, ...] = (
    Seam(
        "moto.cloudformation.models.CloudFormationBackend.validate_template",
        "wrapped: only cfn-lint's errors refuse a template (moto refuses on warnings too; osls writes W3005)",
        "osls deploy fails at ValidateTemplate on a template AWS accepts",
        lambda: (
            parameters(CloudFormationBackend.validate_template) == ["self", "template"]
            and "cfn_lint[0].message" in source(CloudFormationResponse.validate_template)
        ),
    ),
    Seam(
        "moto.awslambda.models.LambdaFunction",
        "read: the deployed function's code_bytes, code_sha_256, handler, environment_vars, timeout, memory_size",
        "the endpoint could not find the deployed zip or its configuration: every invocation would fail",
        lambda: all(
            f"self.{attribute}" in source(LambdaFunction)
            for attribute in ("code_bytes", "code_sha_256", "handler", "environment_vars", "timeout", "memory_size")
        ),
    ),
    Seam(
        "moto.awslambda.utils.get_backend",
        "relied on: the Lambda backend (Docker or simple) is chosen per request from moto's config",
        "Lambda would try to start Docker, which this machine does not have",
        lambda: '"use_docker", True) is False' in source(lambda_utils.get_backend),
    ),
    Seam(
        "moto.settings.moto_server_port",
        "set through MOTO_PORT: the interpreter's own calls (Lambda, DynamoDB tasks) go back to this server",
        "every task would call port 5000 and fail",
        lambda: "MOTO_PORT" in source(moto_settings.moto_server_port),
    ),
    Seam(
        "moto.stepfunctions.parser.asl.utils.boto_client.boto3",
        "replaced: the interpreter's clients (its Lambda and DynamoDB tasks) sign with the endpoint's credentials",
        "every task's call back to the endpoint would be refused (403): every saga would fail at its first step",
        lambda: (
            'aws_access_key_id="ak"' in source(boto_client.boto_client_for)
            and "return boto3.client(" in source(boto_client.boto_client_for)
        ),
    ),
    Seam(
        "moto.moto_server.werkzeug_app.DomainDispatcherApplication",
        "the endpoint serves moto's app as moto's own ThreadedMotoServer does",
        "the endpoint would not start",
        lambda: (
            "DomainDispatcherApplication(create_backend_app)" in source(ThreadedMotoServer._server_entry)
            and "request_handler=MotoRequestHandler" in source(ThreadedMotoServer._server_entry)
        ),
    ),
    # werkzeug's, under moto's routers:
    Seam(
        "werkzeug.routing.rules.Rule._compile_builder",
        "replaced: a rule's URL builder is compiled when a URL is first built (moto's routers only match)",
        "each router's map would compile two builders per rule again (~0.25 s for Lambda's; slower, not wrong)",
        lambda: (
            "self._compile_builder(False).__get__(self, None)" in source(Rule.compile)
            and parameters(Rule._compile_builder) == ["self", "append_unknown"]
        ),
    ),
    # botocore's, not moto's: the tools' process reads botocore's data files once (sagatools/botocore_data.py).
    Seam(
        "botocore.loaders.JSONFileLoader.load_file",
        "replaced: a data file decoded once per process and kept in .runtest/cache, a copy for each caller",
        "every session would decode endpoints.json and the service models again (slower, not wrong)",
        lambda: (
            list(loaders._JSON_OPEN_METHODS)[:2] == [".json", ".json.gz"]
            and parameters(loaders.JSONFileLoader.load_file) == ["self", "file_path"]
            and "_JSON_OPEN_METHODS" in source(loaders.JSONFileLoader.load_file)
        ),
    ),
    Seam(
        "botocore.loaders.Loader.list_available_services",
        "replaced: each search path's services listed once per process",
        "each session would list every service's folder again (thousands of stat calls)",
        lambda: (
            "def list_available_services(self, type_name):" in source(loaders.Loader)
            and "self.search_paths" in source(loaders.Loader)
            and "key = (func.__name__,) + args" in source(loaders.instance_cache)
        ),
    ),
)
