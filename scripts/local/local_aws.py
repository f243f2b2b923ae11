"""Helpers for scripts/run-local (the local lifecycle against moto server).

  catcher PORT        stands in for CloudFormation's presigned ResponseURL:
                      prints each response body it receives, one per line
  prepare             creates what the template would before the custom
                      resource runs: the connector's secret (empty), and the
                      portal credentials secret ({"Token": $LOCAL_PORTAL_TOKEN})
  rotate              starts a rotation of the connector's secret as Secrets
                      Manager would (a function registered in moto's Lambda,
                      RotateSecret with a new token, RotateImmediately=false)
                      and prints the token; run-local then sends the steps
  show TITLE          prints what exists in the account: users and their
                      policies and keys, the secret's stages (never its
                      value), trails and buckets; and the AWS instances of the
                      portal emulator ($PORTAL_URL)

Uses boto3 from the venv (moto depends on it) and the environment that
run-local sets (AWS_ENDPOINT_URL, AWS_REGION, test credentials).
"""
import http.server
import json
import sys

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/cloudapps/5b6ee0f0-8a3a-11f0-9f6c-0a1b2c3d4e5f"
SECRET_NAME = "cloudapps/connector-key"
PORTAL_SECRET_NAME = "cloudapps/portal-credentials"


def catcher(port: int) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):  # noqa: N802 (the HTTP verb)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            print(body.decode(), flush=True)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):  # the URL carries a signature: never log it
            pass

    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()


def clients():
    import boto3

    return {name: boto3.client(name) for name in ("iam", "secretsmanager", "cloudtrail", "s3")}


def prepare() -> None:
    sm = clients()["secretsmanager"]
    sm.create_secret(
        Name=SECRET_NAME,
        Tags=[{"Key": "aws:cloudformation:stack-id", "Value": STACK_ID}],
    )
    print(f"secret {SECRET_NAME} created (empty), as the template declares it")
    import os

    out = sm.create_secret(
        Name=PORTAL_SECRET_NAME,
        SecretString=json.dumps({"Token": os.environ["LOCAL_PORTAL_TOKEN"]}),
    )
    print(out["ARN"])


def rotate() -> None:
    import urllib.request
    import uuid

    c = clients()
    iam = boto3_client("iam")
    try:
        role = iam.get_role(RoleName="cloudapps-rotation")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                 "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        role = iam.create_role(RoleName="cloudapps-rotation", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    import os

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    body = {"FunctionName": "cloudapps-rotation", "Runtime": "provided.al2023", "Role": role,
            "Handler": "bootstrap", "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}
    request = urllib.request.Request(
        f"{endpoint}/2015-03-31/functions", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261123/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0"})
    try:
        arn = json.load(urllib.request.urlopen(request))["FunctionArn"]
    except urllib.error.HTTPError:  # already registered
        arn = boto3_client("lambda").get_function(FunctionName="cloudapps-rotation")["Configuration"]["FunctionArn"]
    token = str(uuid.uuid4())
    c["secretsmanager"].rotate_secret(
        SecretId=SECRET_NAME, ClientRequestToken=token, RotationLambdaARN=arn,
        RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    print(token)


def boto3_client(name: str):
    import boto3

    return boto3.client(name)


def show(title: str) -> None:
    c = clients()
    print(f"--- {title}")
    users = c["iam"].list_users()["Users"]
    if not users:
        print("IAM users: none")
    for u in users:
        attached = c["iam"].list_attached_user_policies(UserName=u["UserName"])["AttachedPolicies"]
        keys = c["iam"].list_access_keys(UserName=u["UserName"])["AccessKeyMetadata"]
        print(f"IAM user {u['Arn']}")
        for p in attached:
            print(f"  policy attached: {p['PolicyArn']}")
        for k in keys:
            print(f"  access key {k['AccessKeyId']} ({k['Status']})")
    for p in c["iam"].list_policies(Scope="Local")["Policies"]:
        print(f"customer managed policy {p['Arn']}")
    d = c["secretsmanager"].describe_secret(SecretId=SECRET_NAME)
    stages = {v: s for v, s in d.get("VersionIdsToStages", {}).items()}
    current = c["secretsmanager"].get_secret_value(SecretId=SECRET_NAME, VersionStage="AWSCURRENT")
    value = json.loads(current["SecretString"])
    print(f"secret {d['ARN']}: {len(stages)} version(s); AWSCURRENT holds {sorted(value)} (values not shown)")
    if "SecretAccessKey" in value:
        import boto3

        sts = boto3.client(
            "sts",
            aws_access_key_id=value["AccessKeyId"],
            aws_secret_access_key=value["SecretAccessKey"],
        )
        arn = sts.get_caller_identity()["Arn"]
        users = {u["Arn"] for u in c["iam"].list_users()["Users"]}
        verdict = "the connector user" if arn in users else "not a connector user: the key is dead"
        print(f"  the key in AWSCURRENT authenticates as {arn} ({verdict})")
    trails = c["cloudtrail"].describe_trails()["trailList"]
    if not trails:
        print("trails: none")
    for t in trails:
        status = c["cloudtrail"].get_trail_status(Name=t["TrailARN"])
        print(
            f"trail {t['TrailARN']}: multi-region={t['IsMultiRegionTrail']} "
            f"logging={status['IsLogging']} bucket={t['S3BucketName']}"
        )
    for b in c["s3"].list_buckets()["Buckets"]:
        print(f"bucket {b['Name']}")
    show_portal()


def show_portal() -> None:
    import os
    import urllib.request

    url = os.environ.get("PORTAL_URL")
    if not url:
        return
    with urllib.request.urlopen(f"{url}/_emulator/instances") as r:
        instances = json.load(r)
    with urllib.request.urlopen(f"{url}/_emulator/tests") as r:
        tests = json.load(r)
    if not instances:
        print("portal: no AWS instance")
    for i in instances:
        print(
            f"portal instance {i['name']!r} ({i['id']}): status={i['status']} enabled={i['enabled']} "
            f"key={i['access_key_id']} connections={','.join(i['connections'])}"
        )
        for t in tests:
            if t["instance_id"] == i["id"]:
                print(f"  test {t['test_id']} with key {t['access_key_id']}: {t['state']} {t.get('reason') or ''}")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "catcher":
        catcher(int(sys.argv[2]))
    elif command == "prepare":
        prepare()
    elif command == "rotate":
        rotate()
    elif command == "show":
        show(" ".join(sys.argv[2:]))
    else:
        sys.exit(f"unknown command {command}")
