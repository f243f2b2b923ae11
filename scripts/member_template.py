"""Builds the StackSet member template: template.yaml without its transform.

StackSets do not take macros (AWS::Serverless-2016-10-31 is one), so the
SAM template is expanded here, offline, with the SAM translator (the one
cfn-lint ships), into plain CloudFormation. Each function's code comes from
S3: the bucket `<CodeBucketPrefix>-<region>` (one per target region, the
region of each stack instance), key `cloudapps/<function>-<sha256 prefix>.zip`
(content-addressed: a new build is a new key, so updating the stack set
updates the functions).

Usage:
  python scripts/member_template.py TEMPLATE OUT_DIR NAME=BOOTSTRAP [NAME=BOOTSTRAP ...]
  python scripts/member_template.py -h|--help    this text, nothing else

NAME is a function's binary (`connector`, `rotation`, `health`), BOOTSTRAP its built
executable (from `sam build` or `cargo lambda build`). Writes
OUT_DIR/<NAME>-<sha>.zip (deterministic: fixed time stamp and mode) and
OUT_DIR/member-template.json, and prints the upload commands.
"""
import hashlib
import io
import json
import os
import sys
import zipfile

from cfnlint.decode import decode_str
from samtranslator.translator.transform import transform

KEY_PREFIX = "cloudapps/"


def zipped(bootstrap: str) -> bytes:
    """A Lambda zip holding `bootstrap`, the same bytes for the same input."""
    buffer = io.BytesIO()
    info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w") as z, open(bootstrap, "rb") as f:
        z.writestr(info, f.read(), compresslevel=9)
    return buffer.getvalue()


class NoManagedPolicies:
    """The translator asks for AWS managed policy ARNs only for policies named
    in a function's `Policies`; the template gives every function its own
    role, so there are none to resolve (and no AWS call is made)."""

    def load(self) -> dict:
        return {}


def member_template(template: dict, keys: dict) -> dict:
    functions = {
        name: res
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }
    binaries = {res["Metadata"]["BuildProperties"]["Binary"] for res in functions.values()}
    if binaries != set(keys):
        sys.exit(f"member_template: the template builds {sorted(binaries)}, given {sorted(keys)}")
    template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for res in functions.values():
        binary = res["Metadata"]["BuildProperties"]["Binary"]
        res["Properties"]["CodeUri"] = {
            "Bucket": {"Fn::Sub": "${CodeBucketPrefix}-${AWS::Region}"},
            "Key": keys[binary],
        }
        del res["Metadata"]
    template["Parameters"]["CodeBucketPrefix"] = {
        "Type": "String",
        "AllowedPattern": "[a-z0-9][a-z0-9.-]{1,40}",
        "Description": (
            "The functions' code is in the bucket <CodeBucketPrefix>-<region> of each "
            "target region, readable by the organization (README, Organization)."
        ),
    }
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    interface["ParameterGroups"].append(
        {"Label": {"default": "Code"}, "Parameters": ["CodeBucketPrefix"]}
    )
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator asks; unused
    out = transform(template, {}, NoManagedPolicies())
    if "Transform" in out:
        sys.exit("member_template: the expanded template still has a Transform")
    for name, res in out["Resources"].items():
        if res["Type"].startswith("AWS::Serverless::"):
            sys.exit(f"member_template: {name} is still {res['Type']}")
    out["Description"] = out["Description"] + " (StackSet member template, built from template.yaml)"
    return out


def main() -> None:
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(__doc__.strip())
        return
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    source, out_dir, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
    template, problems = decode_str(open(source).read())
    if problems:
        sys.exit(f"member_template: cannot read {source}: {problems}")
    template = json.loads(json.dumps(template))
    os.makedirs(out_dir, exist_ok=True)
    keys = {}
    for pair in pairs:
        name, _, bootstrap = pair.partition("=")
        data = zipped(bootstrap)
        file = f"{name}-{hashlib.sha256(data).hexdigest()[:16]}.zip"
        with open(os.path.join(out_dir, file), "wb") as f:
            f.write(data)
        keys[name] = KEY_PREFIX + file
        print(f"{os.path.join(out_dir, file)}: {len(data)} bytes")
    out = member_template(template, keys)
    path = os.path.join(out_dir, "member-template.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"{path}: the StackSet template (no transform)")
    print("upload, for every target region R, to the bucket <CodeBucketPrefix>-R:")
    for key in keys.values():
        print(f"  aws s3 cp {os.path.join(out_dir, key[len(KEY_PREFIX):])} s3://<CodeBucketPrefix>-R/{key}")


if __name__ == "__main__":
    main()
