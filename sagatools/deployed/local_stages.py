"""The stages the local endpoint holds: `./build.sh local status` lists them, and `stop` names those it
takes along. Asked with the endpoint's own credentials, like every call to it."""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING

from sagatools.serverless_config import load_service_config

if TYPE_CHECKING:
    from sagatools.fake_credentials import EndpointCredentials

LOCAL_STAGE = "local"


def deployed_stages(url: str, credentials: EndpointCredentials | None, timeout: float = 10.0) -> list[str] | None:
    """`stage (region)` of every stack of this service the endpoint at `url` holds, in any region; None if it
    did not answer in time, or its credentials could not be read."""
    import boto3  # only status and stop need it
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    if credentials is None:
        return None
    service = load_service_config(LOCAL_STAGE).service
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})
    session = boto3.session.Session(**credentials.keywords())

    def stages_in(region: str) -> list[str]:
        client = session.client("cloudformation", endpoint_url=url, region_name=region, config=config)
        return [
            f"{stack['StackName'].removeprefix(service + '-')} ({region})"
            for stack in client.describe_stacks().get("Stacks", [])
            if stack["StackName"].startswith(service + "-")
            and stack["StackStatus"].endswith("_COMPLETE")
            and "DELETE" not in stack["StackStatus"]
        ]

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:  # ~30 regions, asked at once
            found = [
                stage
                for stages in pool.map(stages_in, session.get_available_regions("cloudformation"))
                for stage in stages
            ]
    except (BotoCoreError, ClientError):
        return None
    return sorted(found)
