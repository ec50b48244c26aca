"""Run moto's server for layer-sync's integration tests, with moto's RAM gaps closed.

Usage:
    .venv/bin/python test/support/moto_launcher.py [--host 127.0.0.1] [--port 0] [--exit-on-stdin-eof]

``--port 0`` (the default) lets the OS choose a free port while binding, so there is no window in which
another process can take the port. Once the server accepts connections, exactly one line is printed on
stdout: ``ready port=<port>``. SIGTERM/SIGINT (or EOF on stdin with ``--exit-on-stdin-eof``, which the
Vitest global setup uses so that a crashed test runner never leaves a server behind) stop it.

Patches, applied at import time to moto 5.2.x (written against 5.2.5; an import error here means moto
moved the code being patched). They patch moto's classes, not one backend, so they hold in every Region
(RAM backends are per Region, chosen from the request's SigV4 scope; the SSM ARN pattern accepts any
Region; Organizations is global). Real AWS supports each of these; moto does not:

1. ``ssm:Parameter`` is shareable. moto's ``ResourceShare.add_resources`` only accepts ARNs whose
   resource-type word is in ``SHAREABLE_RESOURCES`` and rejects
   ``arn:aws:ssm:<region>:<account>:parameter/<name>`` with MalformedArnException "You cannot share the
   selected resource type.". SSM parameter ARNs are accepted (every other ARN still goes through moto's
   own check), and ``ssm:Parameter`` with its AWS managed default permission
   ``AWSRAMDefaultPermissionSSMParameterReadOnly`` is added to ListResourceTypes / ListPermissions.
   Not emulated: AWS also requires the parameter to exist, be owned by the caller and be Advanced tier.
2. ``AssociateResourceShare`` and ``DisassociateResourceShare`` (POST /associateresourceshare,
   /disassociateresourceshare) exist. They add/remove ``resourceArns`` and ``principals`` on an existing
   share with the same validation as CreateResourceShare, and answer like AWS:
   ``{"resourceShareAssociations": [...], "clientToken": ...}`` with status ``ASSOCIATING`` /
   ``DISASSOCIATING`` (AWS works asynchronously); GetResourceShareAssociations then reports
   ``ASSOCIATED`` entries (disassociated ones disappear instead of showing ``DISASSOCIATED``).
   ``sources`` is not supported.
3. Nested OUs are principals. moto only looks for an OU among the root's direct children and rejects a
   nested OU with UnknownResourceException; any OU of the caller's organization is accepted.
4. CodePipeline ``PutJobSuccessResult`` and ``PutJobFailureResult`` (pipeline-gate mode) exist. They
   validate the request like AWS (``jobId`` required; a failure needs ``failureDetails.type`` and
   ``message``) and, as in AWS, a job takes one result: a second one answers InvalidJobStateException.
   Jobs are not otherwise modelled (any job id is accepted once).
5. Lambda runs the "simple" backend from the start (``{"lambda": {"use_docker": false}}``, no Docker): Invoke
   answers with the results queued through ``POST /moto-api/static/lambda-simple/response`` (per account and
   Region) or echoes the payload. ``moto.awslambda.models.lambda_backends`` points at the simple backends,
   so layers, functions and invokes all live in one state (moto 5.2.1 looked ``Layers`` up in the Docker
   backend's state and refused every layer with "One or more LayerVersion does not exist"), and switching
   the config later never hides what other tests created. Functions have no ``docker_client`` (an
   AttributeError), so ``/moto-api/data.json`` still dumps the state once a function exists.
6. A function's ``Layers`` are resolved in the account and Region of each layer version ARN, as AWS does
   (moto looks them up by name in the function's own account). The layer's permissions are not checked.
7. AssumeRole refuses a role that does not exist in the target account, with AccessDenied (403) like AWS
   answers a caller the role does not trust. moto otherwise lets anyone assume any role ARN, existing or
   not (trust policies are still not evaluated), so an account without the consumer read role could not
   be told from one with it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time, utcnow
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.ram import urls as ram_urls
from moto.ram.exceptions import UnknownResourceException
from moto.ram.models import ResourceAccessManagerBackend, ResourceShare
from moto.ram.responses import ResourceAccessManagerResponse
from moto.ram.utils import AWS_MANAGED_PERMISSIONS, RAM_RESOURCE_TYPES, format_ram_permission

# ---------------------------------------------------------------------------------------------------------
# Patch 1: ssm:Parameter is a shareable resource type.

SSM_PARAMETER_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9_.\-/]+$")

_original_add_resources = ResourceShare.add_resources


def _add_resources(self: ResourceShare, resource_arns: list[str]) -> None:
    """moto's validation for everything but SSM parameter ARNs; all ARNs are kept in request order."""
    before = len(self.resource_arns)
    _original_add_resources(self, [arn for arn in resource_arns if not SSM_PARAMETER_ARN.match(arn)])
    del self.resource_arns[before:]
    self.resource_arns.extend(resource_arns)


RAM_RESOURCE_TYPES.append({"resourceType": "ssm:Parameter", "serviceName": "ssm", "resourceRegionScope": "REGIONAL"})
AWS_MANAGED_PERMISSIONS.append(
    format_ram_permission(name="AWSRAMDefaultPermissionSSMParameterReadOnly", resource_type="ssm:Parameter")
)
AWS_MANAGED_PERMISSIONS.append(
    format_ram_permission(
        name="AWSRAMPermissionSSMParameterReadOnlyWithHistory",
        resource_type="ssm:Parameter",
        is_resource_type_default=False,
    )
)

# ---------------------------------------------------------------------------------------------------------
# Patch 3: an OU at any depth of the caller's organization is a valid principal.

OU_ARN = re.compile(r"^arn:aws:organizations::\d{12}:ou/o-\w+/ou-[\w-]+$")

_original_add_principals = ResourceShare.add_principals


def _add_principals(self: ResourceShare, principals: list[str]) -> None:
    """moto's validation for everything but OUs that exist in the organization; all kept in request order."""
    backend = self.organizations_backend
    known_ous = {ou.arn for ou in backend.ou} if backend.org is not None else set()
    before = len(self.principals)
    _original_add_principals(self, [p for p in principals if not (OU_ARN.match(p) and p in known_ous)])
    del self.principals[before:]
    self.principals.extend(principals)


ResourceShare.add_resources = _add_resources  # type: ignore[method-assign]
ResourceShare.add_principals = _add_principals  # type: ignore[method-assign]

# ---------------------------------------------------------------------------------------------------------
# Patch 2: AssociateResourceShare / DisassociateResourceShare.


class MissingRequiredParameterException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("MissingRequiredParameterException", message)


def _active_share(backend: ResourceAccessManagerBackend, arn: str | None) -> ResourceShare:
    if not arn:
        raise MissingRequiredParameterException("The request is missing the required parameter resourceShareArn.")
    share = next((s for s in backend.resource_shares if s.arn == arn and s.status == "ACTIVE"), None)
    if share is None:
        raise UnknownResourceException(f"ResourceShare {arn} could not be found.")
    return share


def _associations(share: ResourceShare, entities: list[tuple[str, str]], status: str) -> list[dict[str, Any]]:
    now = unix_time(utcnow())
    return [
        {
            "resourceShareArn": share.arn,
            "resourceShareName": share.name,
            "associatedEntity": entity,
            "associationType": association_type,
            "status": status,
            "creationTime": now,
            "lastUpdatedTime": now,
            "external": False,
        }
        for association_type, entity in entities
    ]


def _requested(params: dict[str, Any]) -> tuple[list[str], list[str]]:
    if params.get("sources"):
        raise NotImplementedError("moto_launcher: 'sources' is not supported by (Dis)AssociateResourceShare")
    return list(dict.fromkeys(params.get("resourceArns") or [])), list(dict.fromkeys(params.get("principals") or []))


def associate_resource_share(self: ResourceAccessManagerBackend, params: dict[str, Any]) -> dict[str, Any]:
    share = _active_share(self, params.get("resourceShareArn"))
    resource_arns, principals = _requested(params)
    saved = (list(share.resource_arns), list(share.principals))
    try:  # all or nothing, like one AWS request
        share.add_resources([arn for arn in resource_arns if arn not in share.resource_arns])
        share.add_principals([p for p in principals if p not in share.principals])
    except Exception:
        share.resource_arns, share.principals = saved
        raise
    share.last_updated_time = utcnow()
    entities = [("RESOURCE", arn) for arn in resource_arns] + [("PRINCIPAL", p) for p in principals]
    response: dict[str, Any] = {"resourceShareAssociations": _associations(share, entities, "ASSOCIATING")}
    if params.get("clientToken") is not None:
        response["clientToken"] = params["clientToken"]
    return response


def disassociate_resource_share(self: ResourceAccessManagerBackend, params: dict[str, Any]) -> dict[str, Any]:
    share = _active_share(self, params.get("resourceShareArn"))
    resource_arns, principals = _requested(params)
    removed = [("RESOURCE", arn) for arn in resource_arns if arn in share.resource_arns]
    removed += [("PRINCIPAL", p) for p in principals if p in share.principals]
    share.resource_arns = [arn for arn in share.resource_arns if arn not in resource_arns]
    share.principals = [p for p in share.principals if p not in principals]
    share.last_updated_time = utcnow()
    response: dict[str, Any] = {"resourceShareAssociations": _associations(share, removed, "DISASSOCIATING")}
    if params.get("clientToken") is not None:
        response["clientToken"] = params["clientToken"]
    return response


def _associate_response(self: ResourceAccessManagerResponse) -> str:
    return json.dumps(associate_resource_share(self.ram_backend, self.request_params))


def _disassociate_response(self: ResourceAccessManagerResponse) -> str:
    return json.dumps(disassociate_resource_share(self.ram_backend, self.request_params))


# moto dispatches a REST request to the response method named after the botocore operation
# (AssociateResourceShare -> associate_resource_share), once the Flask app routes its path.
# A moto release that implements an operation natively keeps its own implementation.
for _operation, _method in (
    ("associate_resource_share", _associate_response),
    ("disassociate_resource_share", _disassociate_response),
):
    if not hasattr(ResourceAccessManagerResponse, _operation):
        setattr(ResourceAccessManagerResponse, _operation, _method)
        ram_urls.url_paths["{0}/" + _operation.replace("_", "") + "$"] = ResourceAccessManagerResponse.dispatch


# ---------------------------------------------------------------------------------------------------------
# 4. CodePipeline job results

from moto.codepipeline.responses import CodePipelineResponse  # noqa: E402

_JOB_RESULTS: dict[str, dict[str, Any]] = {}
_JOB_LOCK = threading.Lock()
_FAILURE_TYPES = {
    "JobFailed",
    "ConfigurationError",
    "PermissionError",
    "RevisionOutOfSync",
    "RevisionUnavailable",
    "SystemUnavailable",
}


def _record_job_result(self: CodePipelineResponse, status: str) -> str:
    job_id = self._get_param("jobId")
    if not isinstance(job_id, str) or not re.fullmatch(r"[0-9a-z-]{36}", job_id):
        raise JsonRESTError("ValidationException", "jobId must be a job id (36 characters)")
    if status == "Failed":
        details = self._get_param("failureDetails") or {}
        if details.get("type") not in _FAILURE_TYPES or not details.get("message"):
            raise JsonRESTError("ValidationException", "failureDetails needs a valid type and a message")
        if len(details["message"]) > 5000:
            raise JsonRESTError("ValidationException", "failureDetails.message is longer than 5000 characters")
    else:
        summary = (self._get_param("executionDetails") or {}).get("summary", "")
        if len(summary) > 2048:
            raise JsonRESTError("ValidationException", "executionDetails.summary is longer than 2048 characters")
    with _JOB_LOCK:
        if job_id in _JOB_RESULTS:
            raise JsonRESTError("InvalidJobStateException", f"Job {job_id} is already {_JOB_RESULTS[job_id]['status']}")
        _JOB_RESULTS[job_id] = {"status": status, "request": json.loads(self.body or "{}")}
    return "{}"


def _put_job_success_result(self: CodePipelineResponse) -> str:
    return _record_job_result(self, "Succeeded")


def _put_job_failure_result(self: CodePipelineResponse) -> str:
    return _record_job_result(self, "Failed")


for _operation, _method in (
    ("put_job_success_result", _put_job_success_result),
    ("put_job_failure_result", _put_job_failure_result),
):
    if not hasattr(CodePipelineResponse, _operation):
        setattr(CodePipelineResponse, _operation, _method)


# ---------------------------------------------------------------------------------------------------------
# 5. The simple Lambda backend (no Docker), one state for layers, functions and invokes

import moto.awslambda.models as lambda_models  # noqa: E402
from moto.awslambda.exceptions import UnknownLayerVersionException  # noqa: E402
from moto.awslambda_simple.models import lambda_simple_backends  # noqa: E402
from moto.core.config import default_user_config  # noqa: E402

default_user_config["lambda"] = {"use_docker": False}
lambda_models.lambda_backends = lambda_simple_backends  # type: ignore[assignment]


def _no_docker(self: Any) -> Any:
    raise AttributeError("moto_launcher runs Lambda without Docker")


# /moto-api/data.json reads every public attribute of every function; without Docker, docker_client raised
# DockerException there (the dump failed as soon as a function existed). AttributeError is skipped by the dump.
lambda_models.LambdaFunction.docker_client = property(_no_docker)  # type: ignore[assignment,method-assign]

# ---------------------------------------------------------------------------------------------------------
# 6. Layers are looked up in the account and Region of their ARN

_LAYER_VERSION_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:([a-z0-9-]+):(\d{12}):layer:[A-Za-z0-9_-]+:\d+$")


def _get_layers_data(self: Any, layers_versions_arns: list[str]) -> list[dict[str, Any]]:
    found = []
    for arn in layers_versions_arns:
        m = _LAYER_VERSION_ARN.match(arn)
        backend = lambda_simple_backends[m.group(2)][m.group(1)] if m else None
        layer_version = backend.layers_versions_by_arn(arn) if backend else None
        if not layer_version:
            raise UnknownLayerVersionException(layers_versions_arns)
        found.append({"Arn": layer_version.arn, "CodeSize": layer_version.code_size})
    return found


lambda_models.LambdaFunction._get_layers_data = _get_layers_data  # type: ignore[method-assign]

# ---------------------------------------------------------------------------------------------------------
# 7. AssumeRole of a role missing in the target account: AccessDenied.

from moto.iam.models import iam_backends  # noqa: E402
from moto.sts.exceptions import STSClientError  # noqa: E402
from moto.sts.models import STSBackend  # noqa: E402

_ROLE_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(.+)$")


class AccessDenied(STSClientError):
    code = "AccessDenied"

    def __init__(self, message: str):
        super().__init__("AccessDenied", message)


_original_assume_role = STSBackend.assume_role


def _assume_role(self: STSBackend, **kwargs: Any) -> Any:
    role_arn = kwargs.get("role_arn", "")
    m = _ROLE_ARN.match(role_arn)
    if m:
        partition = "global" if m.group(1) == "aws" else m.group(1)
        try:
            roles = iam_backends[m.group(2)][partition].get_roles()
        except KeyError:
            roles = []
        if not any(r.arn == role_arn for r in roles):
            raise AccessDenied(f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}")
    return _original_assume_role(self, **kwargs)


STSBackend.assume_role = _assume_role  # type: ignore[method-assign]

# ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 lets the OS pick a free port")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin closes (parent died)")
    args = parser.parse_args()

    # werkzeug logs every request at INFO; keep warnings and errors (tracebacks of moto failures).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    # Some moto services (Lambda, SQS, presigned URLs) build URLs that point back at the server.
    os.environ["MOTO_PORT"] = str(port)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.exit_on_stdin_eof:

        def watch_stdin() -> None:
            while sys.stdin.buffer.read(4096):
                pass
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()

    print(f"ready port={port}", flush=True)
    while not stop.wait(1):
        pass
    server.stop()


if __name__ == "__main__":
    main()
