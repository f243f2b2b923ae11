"""The Python peer of the cold-start benchmark: what a boto3 Lambda does
where ours does the same, under the same Lambda Runtime API.

Init: import boto3 and create the clients every one of our functions
creates at init (IAM, Secrets Manager, CloudTrail, S3 path-style). Then the
runtime loop, with urllib, handling each event as ours does for the
benchmark's events:
- connector (a Delete of a resource that was never made): answers
  CloudFormation SUCCESS at the ResponseURL, with no AWS call;
- rotation (a secret that does not exist): one DescribeSecret, then the
  failure;
- health (its secret does not exist): DescribeTrails and DescribeSecret,
  then a report.
"""

import json
import os
import urllib.request

import boto3
from botocore.config import Config

FUNCTION = os.environ["PEER_FUNCTION"]
session = boto3.session.Session()
iam = session.client("iam")
secrets = session.client("secretsmanager")
cloudtrail = session.client("cloudtrail")
s3 = session.client("s3", config=Config(s3={"addressing_style": "path"}))

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"


def post(path, body):
    request = urllib.request.Request(API + path, data=json.dumps(body).encode(), method="POST")
    urllib.request.urlopen(request).read()


def handle(event):
    if FUNCTION == "connector":
        answer = {
            "Status": "SUCCESS",
            "PhysicalResourceId": event["PhysicalResourceId"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Reason": "nothing to delete",
        }
        put = urllib.request.Request(
            event["ResponseURL"],
            data=json.dumps(answer).encode(),
            method="PUT",
            headers={"content-type": ""},
        )
        urllib.request.urlopen(put).read()
        return {}
    if FUNCTION == "rotation":
        secrets.describe_secret(SecretId=event["SecretId"])
        return {}
    trails = cloudtrail.describe_trails()["trailList"]
    try:
        secrets.describe_secret(SecretId=os.environ["SECRET_ARN"])
        found = "found"
    except secrets.exceptions.ResourceNotFoundException:
        found = "missing"
    print(json.dumps({"trails": len(trails), "secret": found}))
    return {}


while True:
    with urllib.request.urlopen(API + "next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(response.read())
    try:
        post(request_id + "/response", handle(event))
    except Exception as error:  # the Lambda runtime reports any failure
        post(request_id + "/error", {"errorType": type(error).__name__, "errorMessage": str(error)})
