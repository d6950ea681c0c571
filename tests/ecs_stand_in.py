"""A STAND-IN for AWS's CloudFormation and ECS APIs, answered locally by this file: never
AWS itself. It answers the few calls `make ecs-migrate` and `make ecs-deploy` make through
the real AWS CLI (pointed here by AWS_ENDPOINT_URL), in AWS's wire formats (ECS's JSON 1.1,
CloudFormation's query protocol with XML answers), records each call in order, and lets a
test choose the migration's exit code.

What it proves: the commands, their order, their arguments as the CLI sends them, and what
the scripts do with the answers. What it cannot: that AWS would accept the template, start
the task, let the role read the secret, or run the migration; docs/deploy.md says so too.
"""

import json
import os
import threading
import urllib.parse
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ECS_TARGET = "AmazonEC2ContainerServiceV20141113."
CLOUDFORMATION_NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
# The stand-in's outputs of a deployed stack: what make ecs-migrate reads.
OUTPUTS = {
    "ClusterName": "shop-Cluster-STANDIN",
    "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/shop-ExecutionRole-STANDIN",
    "TaskSecurityGroupId": "sg-0standin",
    "PrivateSubnetIds": "subnet-0standina,subnet-0standinb",
    "AssignPublicIp": "DISABLED",
    "ServiceName": "shop-Service-STANDIN",
}


# A stack's parameters as the tests deploy them: the network's, and a database whose
# password is a Secrets Manager secret of the app's own user, holding JSON (key "password").
# Example ARNs, in AWS's documentation account.
EXAMPLE_NETWORK = {"CertificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/abc", "VpcCidr": "10.0.0.0/16"}
EXAMPLE_DATABASE = {
    "DatabaseHost": f"shop.cluster-c9akciq32.{REGION}.rds.amazonaws.com",
    "DatabasePasswordSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:shop/app-db-AbCdEf",
    "DatabasePasswordJsonKey": "password",
}
# Credentials and settings for the stand-in only: nothing here reaches or could reach AWS.
STAND_IN_SETTINGS = {
    "AWS_ACCESS_KEY_ID": "stand-in-access-key",
    "AWS_SECRET_ACCESS_KEY": "stand-in-secret-key",
    # The AWS CLI v1 reads the second; v2 and the SDKs the first.
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


# The calls each step makes, in order, as the tests expect them. make ecs-deploy's plan:
PLAN_CALLS = ["cloudformation:DescribeStacks"]
# A migration's: the stack, the task definition, the task, and two looks at it (running,
# then stopped, with the exit codes).
MIGRATION_CALLS = [
    "cloudformation:DescribeStacks",
    "ecs:RegisterTaskDefinition",
    "ecs:RunTask",
    "ecs:DescribeTasks",
    "ecs:DescribeTasks",
]
# A deploy's after any migration: `aws cloudformation deploy` (awscli's deployer).
DEPLOY_CALLS = [
    "cloudformation:DescribeStacks",
    "cloudformation:GetTemplateSummary",
    "cloudformation:CreateChangeSet",
    "cloudformation:DescribeChangeSet",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:DescribeStacks",
]
# make ecs-wait-stable's: the stack's cluster and service names, then the service.
WAIT_STABLE_CALLS = ["cloudformation:DescribeStacks", "cloudformation:DescribeStacks", "ecs:DescribeServices"]


class Refused(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class StandIn:
    """The state the calls read and change; `calls` is ["cloudformation:DescribeStacks", ...]."""

    def __init__(self):
        self.stacks = {}
        self.change_sets = {}
        self.task_definitions = []
        self.tasks = {}
        self.runs = []
        self.migration_exit_code = 0
        # True: a task never stops by itself (a migration that hangs) until StopTask.
        self.tasks_hang = False
        self.stopped = []
        self.calls = []
        self.lock = threading.Lock()

    def add_stack(self, name, parameters):
        self.stacks[name] = {"parameters": dict(parameters), "outputs": dict(OUTPUTS), "status": "UPDATE_COMPLETE"}

    # --- ECS ----------------------------------------------------------------------------

    def ecs(self, action, body):
        handler = getattr(self, f"ecs_{action}", None)
        if handler is None:
            raise Refused("InvalidAction", f"the stand-in does not answer ECS {action}")
        return handler(body)

    def ecs_RegisterTaskDefinition(self, body):
        revision = 1 + sum(1 for known in self.task_definitions if known["family"] == body["family"])
        arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{body['family']}:{revision}"
        registered = {**body, "taskDefinitionArn": arn, "revision": revision, "status": "ACTIVE"}
        self.task_definitions.append(registered)
        return {"taskDefinition": registered}

    def ecs_RunTask(self, body):
        definition = next((d for d in self.task_definitions if d["taskDefinitionArn"] == body["taskDefinition"]), None)
        if definition is None:
            raise Refused("ClientException", f"TaskDefinition not found: {body['taskDefinition']}")
        self._cluster(body)
        arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{body['cluster']}/{len(self.tasks) + 1:032x}"
        self.tasks[arn] = {"definition": definition, "describes": 0}
        self.runs.append(body)
        return {"tasks": [self._task(arn, "PROVISIONING")], "failures": []}

    def ecs_DescribeTasks(self, body):
        described = []
        for arn in body["tasks"]:
            task = self.tasks[arn]
            task["describes"] += 1
            # Running at the first look, stopped from the second: a caller must wait.
            running = task["describes"] == 1 or (self.tasks_hang and arn not in self.stopped)
            described.append(self._task(arn, "RUNNING" if running else "STOPPED"))
        return {"tasks": described, "failures": []}

    def ecs_StopTask(self, body):
        if body["task"] not in self.tasks:
            raise Refused("InvalidParameterException", "The referenced task was not found.")
        self.stopped.append(body["task"])
        return {"task": self._task(body["task"], "RUNNING")}

    def ecs_DescribeServices(self, body):
        self._cluster(body)
        services = [
            {
                "serviceName": name,
                "status": "ACTIVE",
                "desiredCount": 2,
                "runningCount": 2,
                "deployments": [{"status": "PRIMARY", "desiredCount": 2, "runningCount": 2}],
            }
            for name in body["services"]
        ]
        return {"services": services, "failures": []}

    def _cluster(self, body):
        """The call's cluster, which must be a deployed stack's, as ECS refuses any other."""
        if body.get("cluster") not in [stack["outputs"].get("ClusterName") for stack in self.stacks.values()]:
            raise Refused("ClusterNotFoundException", "Cluster not found.")
        return body["cluster"]

    def _task(self, arn, status):
        definition = self.tasks[arn]["definition"]
        containers = []
        for container in definition["containerDefinitions"]:
            described = {"name": container["name"], "image": container["image"], "lastStatus": status}
            if status == "STOPPED":
                described["exitCode"] = self.migration_exit_code if container["name"] == "migrate" else 0
            containers.append(described)
        task = {
            "taskArn": arn,
            "taskDefinitionArn": definition["taskDefinitionArn"],
            "lastStatus": status,
            "desiredStatus": "STOPPED" if status == "STOPPED" else "RUNNING",
            "containers": containers,
        }
        if status == "STOPPED":
            task["stoppedReason"] = "Essential container in task exited"
        return task

    # --- CloudFormation -----------------------------------------------------------------

    def cloudformation(self, action, form):
        handler = getattr(self, f"cfn_{action}", None)
        if handler is None:
            raise Refused("InvalidAction", f"the stand-in does not answer CloudFormation {action}")
        return handler(form)

    def _stack(self, name):
        if name not in self.stacks:
            raise Refused("ValidationError", f"Stack with id {name} does not exist")
        return self.stacks[name]

    def cfn_DescribeStacks(self, form):
        name = form["StackName"]
        stack = self._stack(name)
        parameters = "".join(
            f"<member><ParameterKey>{escape(k)}</ParameterKey><ParameterValue>{escape(v)}</ParameterValue></member>"
            for k, v in stack["parameters"].items()
        )
        outputs = "".join(
            f"<member><OutputKey>{escape(k)}</OutputKey><OutputValue>{escape(v)}</OutputValue></member>"
            for k, v in stack["outputs"].items()
        )
        return (
            f"<Stacks><member><StackName>{escape(name)}</StackName><StackId>{self._stack_id(name)}</StackId>"
            "<CreationTime>2026-12-01T00:00:00Z</CreationTime>"
            f"<StackStatus>{stack['status']}</StackStatus><Parameters>{parameters}</Parameters>"
            f"<Outputs>{outputs}</Outputs></member></Stacks>"
        )

    def cfn_GetTemplateSummary(self, form):
        stack = self._stack(form["StackName"])
        members = "".join(f"<member><ParameterKey>{escape(k)}</ParameterKey></member>" for k in stack["parameters"])
        return f"<Parameters>{members}</Parameters>"

    def cfn_CreateChangeSet(self, form):
        name = form["StackName"]
        parameters = {}
        index = 1
        while f"Parameters.member.{index}.ParameterKey" in form:
            prefix = f"Parameters.member.{index}."
            parameters[form[prefix + "ParameterKey"]] = (
                None if form.get(prefix + "UsePreviousValue") == "true" else form.get(prefix + "ParameterValue", "")
            )
            index += 1
        change_set = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/{form['ChangeSetName']}/standin"
        self.change_sets[change_set] = {"stack": name, "parameters": parameters, "type": form["ChangeSetType"]}
        if form["ChangeSetType"] == "CREATE":
            self.stacks[name] = {"parameters": {}, "outputs": {}, "status": "REVIEW_IN_PROGRESS"}
        return f"<Id>{change_set}</Id><StackId>{self._stack_id(name)}</StackId>"

    def cfn_DescribeChangeSet(self, form):
        change_set = self.change_sets[form["ChangeSetName"]]
        return (
            f"<ChangeSetName>{escape(form['ChangeSetName'])}</ChangeSetName>"
            f"<StackName>{escape(change_set['stack'])}</StackName>"
            "<Status>CREATE_COMPLETE</Status><ExecutionStatus>AVAILABLE</ExecutionStatus>"
        )

    def cfn_ExecuteChangeSet(self, form):
        change_set = self.change_sets[form["ChangeSetName"]]
        stack = self.stacks[change_set["stack"]]
        for key, value in change_set["parameters"].items():
            if value is not None:
                stack["parameters"][key] = value
        stack["outputs"] = dict(OUTPUTS)
        stack["status"] = "CREATE_COMPLETE" if change_set["type"] == "CREATE" else "UPDATE_COMPLETE"
        return ""

    @staticmethod
    def _stack_id(name):
        return f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/standin"

    def deployed_parameters(self):
        """The parameters of each executed change set, in order."""
        return [change["parameters"] for change in self.change_sets.values()]


def handler_for(stand_in):
    class Handler(BaseHTTPRequestHandler):
        # A client that stops sending mid-request cannot hold a thread for ever.
        timeout = 10

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length).decode()
            target = self.headers.get("X-Amz-Target", "")
            with stand_in.lock:
                if target.startswith(ECS_TARGET):
                    self._ecs(target[len(ECS_TARGET) :], json.loads(body or "{}"))
                else:
                    form = {key: values[0] for key, values in urllib.parse.parse_qs(body).items()}
                    self._cloudformation(form.get("Action", ""), form)

        def _ecs(self, action, body):
            stand_in.calls.append(f"ecs:{action}")
            try:
                self._send(200, "application/x-amz-json-1.1", json.dumps(stand_in.ecs(action, body)))
            except Refused as refused:
                error = {"__type": refused.code, "message": str(refused)}
                self._send(400, "application/x-amz-json-1.1", json.dumps(error))

        def _cloudformation(self, action, form):
            stand_in.calls.append(f"cloudformation:{action}")
            try:
                result = stand_in.cloudformation(action, form)
            except Refused as refused:
                error = (
                    f'<ErrorResponse xmlns="{CLOUDFORMATION_NAMESPACE}"><Error><Type>Sender</Type>'
                    f"<Code>{refused.code}</Code><Message>{escape(str(refused))}</Message></Error>"
                    "<RequestId>stand-in</RequestId></ErrorResponse>"
                )
                self._send(400, "text/xml", error)
                return
            self._send(
                200,
                "text/xml",
                f'<{action}Response xmlns="{CLOUDFORMATION_NAMESPACE}"><{action}Result>{result}</{action}Result>'
                f"<ResponseMetadata><RequestId>stand-in</RequestId></ResponseMetadata></{action}Response>",
            )

        def _send(self, status, content_type, text):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *arguments):
            pass

    return Handler


@contextmanager
def ecs_stand_in():
    """(the stand-in's state, its endpoint URL) while it answers on a free loopback port."""
    stand_in = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(stand_in))
    thread = threading.Thread(target=server.serve_forever, name="ecs-stand-in", daemon=True)
    thread.start()
    try:
        yield stand_in, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
