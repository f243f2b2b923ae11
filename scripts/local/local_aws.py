"""Helpers for scripts/run-local (the connector's lifecycle on this machine).

  catcher PORT        stands in for CloudFormation's presigned ResponseURL:
                      prints each response body it receives, one per line
  prepare             creates what the template would before the custom
                      resource runs: the connector's secret (empty, tagged with
                      the stack id) and, for the portal emulator, the portal
                      credentials secret ({"Token": $LOCAL_PORTAL_TOKEN});
                      prints the latter's ARN last
  event IN OUT        writes sample event IN as this run's: its account, stack
                      id, secret and ResponseURL port
  answered STEP FILE  reads CloudFormation's last answer from FILE, prints it in
                      short, records the step's result; exit 1 unless SUCCESS
  rotate              starts a rotation of the connector's secret as Secrets
                      Manager would (moto: a function registered in its Lambda,
                      RotateSecret with a new token, RotateImmediately=false)
                      and prints the token
  record STEP OK|FAILED DETAIL    records a step's result
  show TITLE          prints what exists in the account (users and their
                      policies and keys, the secret's stages (never a value),
                      trails, buckets) and the portal's AWS instances
  delete-stack        what CloudFormation deletes after the custom resource:
                      the connector's secret
  table               the final table: each step's result, then what exists
                      in AWS, what the portal holds, and the coverage

  -h, --help          this text, nothing else

Uses boto3 from the venv (moto depends on it) and the environment run-local
sets (AWS_ENDPOINT_URL unless against a real account, AWS_REGION,
credentials, RUN_ACCOUNT, RUN_STACK_ID, RUN_SECRET_NAME, RUN_WORK).
"""
import http.server
import json
import os
import sys

ACCOUNT = os.environ.get("RUN_ACCOUNT", "123456789012")
STACK_ID = os.environ.get(
    "RUN_STACK_ID",
    f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/cloudapps/5b6ee0f0-8a3a-11f0-9f6c-0a1b2c3d4e5f",
)
SECRET_NAME = os.environ.get("RUN_SECRET_NAME", "cloudapps/connector-key")
PORTAL_SECRET_NAME = SECRET_NAME.replace("connector-key", "portal-credentials")
# Only what the connector makes is shown (a real account holds more).
USER_PATH = "/defender-cloud-apps/"
SAMPLE_ACCOUNT = "123456789012"
SAMPLE_STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/cloudapps/5b6ee0f0-8a3a-11f0-9f6c-0a1b2c3d4e5f"
STEPS_FILE = os.path.join(os.environ.get("RUN_WORK", "."), "steps.jsonl")


def client(name: str):
    import boto3

    return boto3.client(name)


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


def prepare() -> None:
    sm = client("secretsmanager")
    sm.create_secret(Name=SECRET_NAME, Tags=[{"Key": "aws:cloudformation:stack-id", "Value": STACK_ID}])
    print(f"secret {SECRET_NAME} created (empty), as the template declares it", file=sys.stderr)
    token = os.environ.get("LOCAL_PORTAL_TOKEN")
    if token:
        out = sm.create_secret(Name=PORTAL_SECRET_NAME, SecretString=json.dumps({"Token": token}))
        print(f"secret {PORTAL_SECRET_NAME} created: the portal emulator's API token", file=sys.stderr)
        print(out["ARN"])


def event(source: str, target: str) -> None:
    text = open(source).read().replace(SAMPLE_STACK_ID, STACK_ID).replace(SAMPLE_ACCOUNT, ACCOUNT)
    text = text.replace("127.0.0.1:8765", f"127.0.0.1:{os.environ.get('RUN_RESPONSE_PORT', '8765')}")
    e = json.loads(text)
    for props in ("ResourceProperties", "OldResourceProperties"):
        if props in e:
            e[props]["SecretArn"] = SECRET_NAME
    if "SecretId" in e:
        e["SecretId"] = SECRET_NAME
    with open(target, "w") as f:
        json.dump(e, f)


def record(step: str, ok: bool, detail: str) -> None:
    with open(STEPS_FILE, "a") as f:
        f.write(json.dumps({"step": step, "ok": ok, "detail": detail}) + "\n")


def answered(step: str, responses: str) -> None:
    lines = [line for line in open(responses) if line.strip()]
    if not lines:
        record(step, False, "no answer reached CloudFormation")
        print("CloudFormation got no answer")
        sys.exit(1)
    body = json.loads(lines[-1])
    ok = body.get("Status") == "SUCCESS"
    data = body.get("Data", {})
    print(f"CloudFormation was answered {body.get('Status')}: {body.get('Reason')}")
    print(f"  PhysicalResourceId {body.get('PhysicalResourceId')}")
    for k in sorted(data):
        print(f"  {k}: {data[k]}")
    detail = body.get("Reason", "") if not ok else ", ".join(
        f"{k}={data[k]}" for k in ("CloudTrailCoverage", "PortalStatus") if k in data
    ) or "done"
    record(step, ok, detail)
    sys.exit(0 if ok else 1)


def rotate() -> None:
    import urllib.error
    import urllib.request
    import uuid

    iam = client("iam")
    try:
        role = iam.get_role(RoleName="cloudapps-rotation")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                 "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        role = iam.create_role(RoleName="cloudapps-rotation", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    # moto never runs it: an empty zip, registered only so RotateSecret accepts it.
    body = {"FunctionName": "cloudapps-rotation", "Runtime": "provided.al2023", "Role": role,
            "Handler": "bootstrap", "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}
    request = urllib.request.Request(
        f"{os.environ['AWS_ENDPOINT_URL']}/2015-03-31/functions", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261123/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0"})
    try:
        arn = json.load(urllib.request.urlopen(request))["FunctionArn"]
    except urllib.error.HTTPError:  # already registered
        arn = client("lambda").get_function(FunctionName="cloudapps-rotation")["Configuration"]["FunctionArn"]
    token = str(uuid.uuid4())
    client("secretsmanager").rotate_secret(
        SecretId=SECRET_NAME, ClientRequestToken=token, RotationLambdaARN=arn,
        RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    print(token)


def state() -> dict:
    """What exists, for show and table."""
    iam, sm, ct, s3 = (client(n) for n in ("iam", "secretsmanager", "cloudtrail", "s3"))
    users = []
    for u in iam.list_users(PathPrefix=USER_PATH)["Users"]:
        attached = iam.list_attached_user_policies(UserName=u["UserName"])["AttachedPolicies"]
        keys = iam.list_access_keys(UserName=u["UserName"])["AccessKeyMetadata"]
        users.append({"arn": u["Arn"], "policies": [p["PolicyArn"] for p in attached],
                      "keys": [(k["AccessKeyId"], k["Status"]) for k in keys]})
    policies = [p["Arn"] for p in iam.list_policies(Scope="Local", PathPrefix=USER_PATH)["Policies"]]
    secret = None
    try:
        d = sm.describe_secret(SecretId=SECRET_NAME)
        current = json.loads(sm.get_secret_value(SecretId=SECRET_NAME, VersionStage="AWSCURRENT")["SecretString"])
        secret = {"arn": d["ARN"], "versions": len(d.get("VersionIdsToStages", {})),
                  "fields": sorted(current), "key": current.get("AccessKeyId"),
                  "deleted": "DeletedDate" in d}
        if "SecretAccessKey" in current:
            import boto3

            sts = boto3.client("sts", aws_access_key_id=current["AccessKeyId"],
                               aws_secret_access_key=current["SecretAccessKey"])
            try:
                secret["authenticates_as"] = sts.get_caller_identity()["Arn"]
            except Exception as e:  # noqa: BLE001 (a dead key is a finding, not a crash)
                secret["authenticates_as"] = f"nobody ({type(e).__name__})"
    except sm.exceptions.ResourceNotFoundException:
        pass
    trails = []
    for t in ct.describe_trails()["trailList"]:
        status = ct.get_trail_status(Name=t["TrailARN"])
        trails.append({"arn": t["TrailARN"], "multi_region": t["IsMultiRegionTrail"],
                       "logging": status["IsLogging"], "bucket": t["S3BucketName"]})
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("cloudapps-trail-")]
    portal = []
    url = os.environ.get("PORTAL_URL")
    if url and os.environ.get("LOCAL_PORTAL_EMULATOR"):
        import urllib.request

        with urllib.request.urlopen(f"{url}/_emulator/instances") as r:
            portal = json.load(r)
    return {"users": users, "policies": policies, "secret": secret, "trails": trails,
            "buckets": buckets, "portal": portal}


def show(title: str) -> None:
    s = state()
    print(f"--- {title}")
    if not s["users"]:
        print("IAM users: none")
    for u in s["users"]:
        print(f"IAM user {u['arn']}")
        for p in u["policies"]:
            print(f"  policy attached: {p}")
        for k, status in u["keys"]:
            print(f"  access key {k} ({status})")
    for p in s["policies"]:
        print(f"customer managed policy {p}")
    if s["secret"]:
        sec = s["secret"]
        print(f"secret {sec['arn']}: {sec['versions']} version(s); AWSCURRENT holds {sec['fields']} (values not shown)")
        if "authenticates_as" in sec:
            who = sec["authenticates_as"]
            note = "" if USER_PATH in who else " (not the connector user: the key is dead; moto lets any key sign in while IAM is not enforced)"
            print(f"  the key in AWSCURRENT authenticates as {who}{note}")
    else:
        print("secret: none")
    if not s["trails"]:
        print("trails: none")
    for t in s["trails"]:
        print(f"trail {t['arn']}: multi-region={t['multi_region']} logging={t['logging']} bucket={t['bucket']}")
    for b in s["buckets"]:
        print(f"bucket {b}")
    for i in s["portal"]:
        print(f"portal instance {i['name']!r} ({i['id']}): status={i['status']} enabled={i['enabled']} "
              f"key={i['access_key_id']} connections={','.join(i['connections'])}")


def delete_stack() -> None:
    """CloudFormation deletes the stack's secret once the custom resource is
    gone; the run's own portal credentials and hand-off topic go too."""
    sm = client("secretsmanager")
    for name in (SECRET_NAME, PORTAL_SECRET_NAME):
        try:
            sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
            print(f"secret {name} deleted")
        except sm.exceptions.ResourceNotFoundException:
            pass
    if os.environ.get("RUN_TOPIC_ARN"):
        client("sns").delete_topic(TopicArn=os.environ["RUN_TOPIC_ARN"])
        print(f"topic {os.environ['RUN_TOPIC_ARN']} deleted")


def table() -> None:
    steps = [json.loads(line) for line in open(STEPS_FILE)] if os.path.exists(STEPS_FILE) else []
    s = state()
    width = max([len(x["step"]) for x in steps] + [10])
    print()
    print(f"{'step':<{width}}  result  detail")
    for x in steps:
        print(f"{x['step']:<{width}}  {'ok' if x['ok'] else 'FAILED':<6}  {x['detail'][:110]}")
    print()
    rows = [
        ("IAM users", ", ".join(u["arn"] for u in s["users"]) or "none"),
        ("access keys", ", ".join(f"{k} {st}" for u in s["users"] for k, st in u["keys"]) or "none"),
        ("customer managed policies", ", ".join(s["policies"]) or "none"),
        ("connector secret", s["secret"]["arn"] if s["secret"] else "none (deleted with the stack)"),
        ("trails", ", ".join(t["arn"] for t in s["trails"]) or "none"),
        ("coverage", ", ".join(
            f"{t['arn'].rsplit('/', 1)[-1]}: {'multi-region' if t['multi_region'] else 'one region'}, "
            f"{'logging' if t['logging'] else 'NOT logging'}" for t in s["trails"]) or "no trail"),
        ("buckets (log bucket kept)", ", ".join(s["buckets"]) or "none"),
        ("portal instances", ", ".join(
            f"{i['name']} {i['status']} key={i['access_key_id']}" for i in s["portal"]) or "none"),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"{'in the end':<{w}}  what exists")
    for name, value in rows:
        print(f"{name:<{w}}  {value}")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "--help"
    if command in ("-h", "--help"):
        print(__doc__.strip())
    elif command == "catcher":
        catcher(int(sys.argv[2]))
    elif command == "prepare":
        prepare()
    elif command == "event":
        event(sys.argv[2], sys.argv[3])
    elif command == "answered":
        answered(sys.argv[2], sys.argv[3])
    elif command == "rotate":
        rotate()
    elif command == "record":
        record(sys.argv[2], sys.argv[3] == "OK", " ".join(sys.argv[4:]))
    elif command == "show":
        show(" ".join(sys.argv[2:]))
    elif command == "delete-stack":
        delete_stack()
    elif command == "table":
        table()
    else:
        sys.exit(f"unknown command {command}")
