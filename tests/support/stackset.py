"""The organization-wide rollout in moto, for tests/org.rs.

  rollout ENDPOINT MEMBER_TEMPLATE CODE_DIR ACCOUNTS PARAMETERS_JSON
      creates an AWS Organization (moto's default account 123456789012 is
      the management account), an OU holding ACCOUNTS new accounts, the
      code bucket <CodeBucketPrefix>-us-east-1 with the zips of CODE_DIR,
      a SERVICE_MANAGED stack set of MEMBER_TEMPLATE with auto-deployment,
      and its instances for the OU in us-east-1; prints JSON: the accounts,
      the instances, the resources dropped from the template (below), and
      what each member account holds afterwards.
  teardown ENDPOINT STACK_SET ACCOUNT...
      deletes the instances and the stack set; prints what the member
      accounts still hold.

moto 5.2.1 creates a stack instance's resources for real, in its account,
except: a custom resource fails the whole instance (moto looks up the
hidden stack it creates for the instance and does not find it), so
Custom::* resources and the Outputs that read them are dropped here and
named in the output ("dropped"); the tests run the connector's Create
themselves. moto keeps an Fn::If that yields AWS::NoValue inside a list as
a null item (AWS drops it): a policy's Statement list then fails IAM's
validation (the user's boundary: "Syntax errors in policy"), so such list
items are decided here, from the stack set's parameters, as CloudFormation
decides them (named in the output: "decided"). AWS::SecretsManager::Secret,
::RotationSchedule, AWS::SNS::Subscription, ::TopicPolicy,
AWS::CloudWatch::Alarm and AWS::Lambda::EventInvokeConfig are not created by
moto (ignored, no error: the member accounts hold no invoke configuration
and no alarm). Auto-deployment is accepted and not acted on;
delete_stack_instances reads Accounts only, and deleting a stack leaves its
AWS::IAM::ManagedPolicy (the user's boundary) in place.
"""
import json
import os
import sys

import boto3
from botocore.config import Config
from template_resolve import Stack

NO_VALUE = {"Ref": "AWS::NoValue"}

REGION = "us-east-1"
STACK_SET = "cloudapps-connector"


def client(endpoint: str, service: str, account: str | None = None):
    c = boto3.client(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    if account:
        def header(request, **_):
            request.headers["x-moto-account-id"] = account
        c.meta.events.register("before-send.*.*", header)
    return c


def reads(node, names: set) -> bool:
    """True when `node` refers to one of `names` (Ref, GetAtt or Sub)."""
    text = json.dumps(node)
    return any(f'"{n}"' in text or f'"{n}.' in text or "${" + n in text for n in names)


def without_custom_resources(template: dict) -> tuple[dict, list[str]]:
    custom = {n for n, r in template["Resources"].items() if r["Type"].startswith("Custom::")}
    dropped = sorted(custom)
    for n in custom:
        del template["Resources"][n]
    for n, r in template["Resources"].items():
        depends = r.get("DependsOn")
        if isinstance(depends, str):
            depends = [depends]
        if isinstance(depends, list):
            r["DependsOn"] = [d for d in depends if d not in custom]
            if not r["DependsOn"]:
                del r["DependsOn"]
        if reads(r.get("Properties", {}), custom):
            sys.exit(f"stackset.py: {n} reads a custom resource; the test cannot drop it")
    for n in [n for n, o in template.get("Outputs", {}).items() if reads(o, custom)]:
        del template["Outputs"][n]
        dropped.append(f"Outputs.{n}")
    return template, sorted(dropped)


def without_no_value_items(template: dict, parameters: dict) -> tuple[dict, list[str]]:
    """Each list item {"Fn::If": [condition, value, AWS::NoValue]} of the
    resources replaced by value, or removed, as the condition decides for
    `parameters`; returns the template and where it decided."""
    stack = Stack(template, {"Parameters": parameters})
    decided = []

    def walk(node, where: str):
        if isinstance(node, dict):
            return {k: walk(v, f"{where}.{k}") for k, v in node.items()}
        if not isinstance(node, list):
            return node
        out = []
        for i, item in enumerate(node):
            branch = item.get("Fn::If") if isinstance(item, dict) and len(item) == 1 else None
            if isinstance(branch, list) and len(branch) == 3 and NO_VALUE in branch[1:]:
                condition, yes, no = branch
                item = yes if stack.condition(condition) else no
                decided.append(f"{where}[{i}]")
                if item == NO_VALUE:
                    continue
            out.append(walk(item, f"{where}[{i}]"))
        return out

    template["Resources"] = walk(template["Resources"], "Resources")
    return template, decided


def member_view(endpoint: str, account: str) -> dict:
    c = lambda s: client(endpoint, s, account)  # noqa: E731
    functions = []
    for f in c("lambda").list_functions()["Functions"]:
        functions.append({
            "name": f["FunctionName"], "runtime": f.get("Runtime"), "handler": f.get("Handler"),
            "memory": f.get("MemorySize"), "timeout": f.get("Timeout"),
            "role": f.get("Role"), "environment": f.get("Environment", {}).get("Variables", {}),
        })
    return {
        "roles": sorted(r["Arn"] for r in c("iam").list_roles(PathPrefix="/cloudapps/")["Roles"]),
        "functions": functions,
        "log_groups": {g["logGroupName"]: g.get("retentionInDays")
                       for g in c("logs").describe_log_groups()["logGroups"]},
        "topics": [t["TopicArn"] for t in c("sns").list_topics()["Topics"]],
        "rules": [r["Name"] for r in c("events").list_rules()["Rules"]],
        "boundaries": [p["Arn"] for p in c("iam").list_policies(
            Scope="Local", PathPrefix="/cloudapps-boundary/")["Policies"]],
    }


def rollout(endpoint: str, template_path: str, code_dir: str, count: int, parameters: dict) -> dict:
    org = client(endpoint, "organizations")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="Connected")["OrganizationalUnit"]["Id"]
    accounts = []
    for i in range(count):
        status = org.create_account(AccountName=f"member{i}", Email=f"member{i}@example.com")
        account = status["CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
        accounts.append(account)

    template = json.load(open(template_path))
    # The code, where the member template looks for it in this region.
    bucket = f"{parameters['CodeBucketPrefix']}-{REGION}"
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket=bucket)
    for r in template["Resources"].values():
        if r["Type"] == "AWS::Lambda::Function":
            key = r["Properties"]["Code"]["S3Key"]
            with open(os.path.join(code_dir, os.path.basename(key)), "rb") as f:
                s3.put_object(Bucket=bucket, Key=key, Body=f.read())

    template, dropped = without_custom_resources(template)
    template, decided = without_no_value_items(template, parameters)
    cfn = client(endpoint, "cloudformation")
    cfn.create_stack_set(
        StackSetName=STACK_SET, TemplateBody=json.dumps(template),
        PermissionModel="SERVICE_MANAGED",
        AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    cfn.create_stack_instances(
        StackSetName=STACK_SET, DeploymentTargets={"OrganizationalUnitIds": [ou]}, Regions=[REGION],
    )
    instances = [
        {"account": s["Account"], "region": s["Region"], "stack_id": s["StackId"],
         "status": s["Status"], "detailed": s["StackInstanceStatus"]["DetailedStatus"]}
        for s in cfn.list_stack_instances(StackSetName=STACK_SET)["Summaries"]
    ]
    return {
        "stack_set": STACK_SET, "ou": ou, "accounts": accounts, "instances": instances,
        "dropped": dropped, "decided": decided,
        "members": {a: member_view(endpoint, a) for a in accounts},
    }


def teardown(endpoint: str, stack_set: str, accounts: list[str]) -> dict:
    cfn = client(endpoint, "cloudformation")
    cfn.delete_stack_instances(StackSetName=stack_set, Accounts=accounts, Regions=[REGION], RetainStacks=False)
    cfn.delete_stack_set(StackSetName=stack_set)
    return {"members": {a: member_view(endpoint, a) for a in accounts}}


def main() -> None:
    command, endpoint = sys.argv[1], sys.argv[2]
    if command == "rollout":
        out = rollout(endpoint, sys.argv[3], sys.argv[4], int(sys.argv[5]), json.loads(sys.argv[6]))
    elif command == "teardown":
        out = teardown(endpoint, sys.argv[3], sys.argv[4:])
    else:
        sys.exit(f"unknown command {command}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
