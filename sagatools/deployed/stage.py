"""A deployed stage: which one, how to reach it, and what its CloudFormation stack says.

Every failure to reach a stage becomes a StageError whose message is one sentence for the user.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
    TokenRetrievalError,
)
from botocore.exceptions import (
    ConnectionError as BotoCoreConnectionError,
)

from saga.settings import MisconfiguredFunction, Settings
from sagatools.asl import SAGA_MACHINE, MachineSpec
from sagatools.deployed.local_endpoint import EndpointNotRunning, owner_credentials, running_endpoint
from sagatools.deployed.local_stages import LOCAL_STAGE
from sagatools.serverless_config import load_service_config
from sagatools.terminal_text import shown

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.model import OperationModel

DEFAULT_STAGE = "dev"
DEFAULT_REGION = "us-west-2"
# An account's Step Functions read APIs are throttled (DescribeExecution refills 15/s, GetExecutionHistory
# 20/s in the large regions), and a big batch reads each saga: adaptive mode paces the client to the rate
# the service allows, and the attempts let a call wait its turn rather than fail the run.
CLIENT_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 12})
# The local endpoint is on this machine and is never throttled: a call it does not answer in a few seconds
# is an endpoint stopped or gone, and waiting 12 attempts x 60 s for it only hides that.
LOCAL_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})


class StageError(Exception):
    """The stage cannot be reached or is not deployed; the message says what to do, in one sentence."""


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region of every partition that has Step Functions, from botocore's own data (no call made)."""
    # Regions are botocore's data, the same for every profile: a session that reads none (AWS_PROFILE may
    # name one that does not exist; that is said later, by the stage's own session).
    session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("stepfunctions", partition_name=partition)
    )


def check_region(region: str, where: str) -> None:
    if region in known_regions():
        return
    hint = f" (did you mean {region.strip().lower()}?)" if region.strip().lower() in known_regions() else ""
    raise StageError(
        f"{where}: '{shown(region)}' is not an AWS region{hint}; regions are written like {DEFAULT_REGION}."
    )


@dataclass(frozen=True)
class Stage:
    name: str
    region: str
    profile: str | None

    @classmethod
    def choose(cls, stage: str | None, region: str | None, profile: str | None) -> Stage:
        """Arguments first, then AWS_REGION / AWS_DEFAULT_REGION / AWS_PROFILE, then the defaults.
        StageError, in one sentence, for a region AWS does not have (the local stage takes the same names)."""
        chosen = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        check_region(chosen, "--region" if region else "AWS_REGION" if os.environ.get("AWS_REGION") else "the region")
        return cls(name=stage or DEFAULT_STAGE, region=chosen, profile=profile or os.environ.get("AWS_PROFILE") or None)

    @property
    def is_local(self) -> bool:
        """The stage of the local cloud: its endpoint runs on this machine and takes only its own credentials."""
        return self.name == LOCAL_STAGE

    @property
    def poll_seconds(self) -> float:
        """How often the tools ask the stage how its executions stand: AWS bills and throttles the calls
        (once a second); the local endpoint is on this machine, where a second is most of a saga."""
        return 0.1 if self.is_local else 1.0

    def describe(self) -> str:
        if self.is_local:
            return f"stage {self.name}, region {self.region}, the local endpoint"
        credentials = f"profile {self.profile}" if self.profile else "the default credentials chain"
        return f"stage {self.name}, region {self.region}, {credentials}"

    @property
    def stack_name(self) -> str:
        return f"{load_service_config(self.name).service}-{self.name}"

    def session(self) -> boto3.Session:
        if self.is_local:
            # Profiles play no part: a session that does not read AWS_PROFILE, with the endpoint's own keys
            # (made at its start; it refuses any other).
            try:
                credentials = owner_credentials()
            except EndpointNotRunning as error:
                raise StageError(str(error)) from None
            return boto3.Session(
                botocore_session=botocore.session.Session(session_vars={"profile": (None, None, None, None)}),
                region_name=self.region,
                **credentials.keywords(),
            )
        try:
            return boto3.Session(profile_name=self.profile, region_name=self.region)
        except ProfileNotFound:
            raise StageError(f"AWS profile {self.profile!r} is not configured (see ~/.aws/config).") from None

    def client(self, service: str) -> BaseClient:
        if self.is_local:
            try:
                endpoint = running_endpoint()
            except EndpointNotRunning as error:
                raise StageError(str(error)) from None
            client = self.session().client(service, endpoint_url=endpoint.url, config=LOCAL_CLIENT_CONFIG)
        else:
            client = self.session().client(service, config=CLIENT_CONFIG)
        client.meta.events.register(
            "before-parse", functools.partial(refuse_a_cut_short_response, endpoint_url=client.meta.endpoint_url)
        )
        return client

    @property
    def deploy_command(self) -> str:
        if self.is_local:
            return f"./build.sh deploy {self.name}"
        return f"./build.sh deploy {self.name} {self.region}{' ' + self.profile if self.profile else ''}"

    def outputs(self) -> dict[str, str]:
        """The outputs of the stage's Serverless stack."""
        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"]
        except ClientError as error:
            message = error.response["Error"].get("Message", "")
            if "does not exist" in message:
                raise StageError(
                    f"Stack {self.stack_name} is not deployed in {self.region}: run {self.deploy_command}."
                ) from None
            raise StageError(f"CloudFormation refused to describe {self.stack_name}: {message}") from None
        except BotoCoreError as error:
            raise StageError(explain(error, self)) from None
        return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def refuse_a_cut_short_response(
    operation_model: OperationModel, response_dict: dict[str, Any], endpoint_url: str, **_: object
) -> None:
    """An answer shorter than its Content-Length is a server that died while it answered: botocore
    would parse the part it got (an empty body becomes a success with no fields), so it is a closed
    connection instead."""
    if operation_model.has_streaming_output or operation_model.http.get("method") == "HEAD":
        return  # a stream is read later; a HEAD's length is the body it did not send
    declared = response_dict["headers"].get("content-length", "")
    body = response_dict["body"]
    if declared.isdigit() and isinstance(body, bytes) and len(body) < int(declared):
        raise ConnectionClosedError(endpoint_url=endpoint_url)


def explain(error: Exception, stage: Stage) -> str:
    if stage.is_local and isinstance(error, BotoCoreConnectionError | HTTPClientError):
        return (
            f"The local endpoint stopped answering ({type(error).__name__}): check it with ./build.sh local status"
            " (./build.sh local start starts one)."
        )
    if isinstance(error, NoCredentialsError | TokenRetrievalError):
        return f"No AWS credentials found for {stage.describe()}: set AWS_PROFILE or pass a profile."
    if isinstance(error, EndpointConnectionError | NoRegionError):
        return f"Cannot reach AWS in region {stage.region!r}: check the region name and the network."
    if isinstance(error, ProfileNotFound):
        return f"AWS profile {stage.profile!r} is not configured (see ~/.aws/config)."
    if isinstance(error, ClientError):
        return f"AWS refused the call: {error.response['Error'].get('Message', error)}"
    return f"AWS call failed: {error}"


def settings_from_outputs(outputs: dict[str, str]) -> Settings:
    """The handlers' settings as deployed, read back from the stack (to read the stage's tables)."""
    try:
        settings = Settings.read(outputs, outputs=True)
        if missing := settings.missing_tables():
            raise MisconfiguredFunction(f"settings incomplete: no output {', '.join(missing)}")
    except MisconfiguredFunction as error:
        raise StageError(f"The stack's outputs are incomplete ({error}): redeploy it with ./build.sh deploy.") from None
    return settings


def state_machine_arn(outputs: dict[str, str], region: str, machine: MachineSpec = SAGA_MACHINE) -> str:
    """Built from the role's account and partition, so no account id is ever written by hand."""
    try:
        _, partition, _, _, account, _ = outputs[machine.role_output].split(":", 5)
        name = outputs[machine.name_output]
    except (KeyError, ValueError):
        raise StageError(
            f"The stack has no {machine.role_output}/{machine.name_output} output: redeploy it with ./build.sh deploy."
        ) from None
    return f"arn:{partition}:states:{region}:{account}:stateMachine:{name}"


def execution_arn(machine_arn: str, name: str) -> str:
    """The ARN an execution named `name` of the state machine `machine_arn` has (or would have)."""
    prefix, _, machine = machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"
