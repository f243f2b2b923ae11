"""Starts moto server for the test bed and the local run.

- binds 127.0.0.1 on the given port (0 = a free one) and prints one JSON
  line {"port": N} on stdout once it accepts connections;
- exits as soon as its stdin closes, so a test process that dies (or a
  shell script that exits) never leaves a server behind;
- loads the AWS managed policies (SecurityAudit, AWSSecurityHubReadOnlyAccess
  exist in moto only with MOTO_IAM_LOAD_MANAGED_POLICIES=true);
- answers cloudtrail:LookupEvents, which moto 5.2 does not implement (HTTP
  500), with an empty, read-only page of events. moto authorizes an action
  before it dispatches it, so IAM enforcement still applies to it;
- authorizes IAM, Secrets Manager, CloudTrail, SNS, KMS and DynamoDB calls
  against the resource ARN AWS would use. moto 5.2.1 authorizes most
  actions against '*' (only IAM role, sts:AssumeRole, SQS and S3 calls get
  a real resource: BaseResponse.call_action, _determine_resource), so a
  statement scoped to resource ARNs never matches and a least-privilege
  policy denies all. With enforcement on (POST /moto-api/reset-auth), each
  request of those services is checked against (see _RESOLVERS below;
  partition and account of the request, region = its signing region):
    iam      user{path}{UserName} (the existing user's path and name as
             spelled when created, found whatever the case of UserName; a
             user that does not exist has no path, so, as in AWS, a
             path-scoped policy gets AccessDenied, not NoSuchEntity; no
             UserName = the calling user; CreateUser: its Path; UpdateUser:
             the old AND the new ARN), group{path}{GroupName} (the same;
             AddUserToGroup, RemoveUserFromGroup...), the PolicyArn (the
             stored policy's, whatever the case), CreatePolicy:
             policy{Path}{PolicyName};
             role actions keep moto's own resource; listings stay '*';
    secretsmanager  the secret's full ARN (name or partial ARN resolved);
             unknown secret: secret:{SecretId}; CreateSecret:
             secret:{Name}-?????? (the random suffix, as AWS evaluates it);
    cloudtrail  trail/{Name|TrailName|ResourceId|ResourceIdList} (ARNs as is);
    sns      the TopicArn (or ResourceArn); CreateTopic: REGION:ACCOUNT:{Name};
    kms      the key ARN of KeyId (key id, key ARN, alias name or alias ARN);
    dynamodb table/{TableName} (an ARN as is), the ResourceArn, the tables
             of Batch*Item's RequestItems and Transact*Items; Query/Scan
             with IndexName: table/{TableName}/index/{IndexName}; ListTables
             and other calls without a table stay '*'.
  One request checked against several ARNs must be allowed on all of them.
  Policy evaluation (moto.iam.access_control.IAMPolicyStatement) gets:
    - Resource/Action wildcards as in AWS ('*' any run, '?' one character;
      moto turned them into a raw regex, so 'secret:x-??????' crashed it);
    - condition operators StringEquals/NotEquals(IgnoreCase), StringLike/
      NotLike, ArnEquals/Like, ArnNotEquals/NotLike (+IfExists), Null,
      evaluated against the values this launcher knows (_iam_conditions;
      for sts:AssumeRole of an existing role, moto_sts.py's: aws:PrincipalArn,
      aws:PrincipalAccount, aws:PrincipalOrgID, sts:ExternalId):
        iam:PolicyARN  the PolicyArn of Attach*/Detach*Policy;
        iam:PermissionsBoundary  the PermissionsBoundary of CreateUser,
             CreateRole, Put{User,Role}PermissionsBoundary; the boundary the
             user/role has for {Attach,Detach,Put,Delete}{User,Role}Policy
             and Delete{User,Role}PermissionsBoundary;
        aws:TagKeys  of a Secrets Manager request only: the keys of
             TagResource's and CreateSecret's Tags, UntagResource's
             TagKeys (a list: ForAllValues:/ForAnyValue: with the operators
             below; a plain operator holds when one value matches), absent
             from its other requests (another service's stays unknown).
      The first two are absent from any other request (S3's too) and when the
      request or entity has none (so are moto_sts.py's keys when the
      request has no value); a condition on an absent key is, as in
      AWS, false for the positive operators (StringEquals, ArnLike...: a
      statement requiring a boundary does not allow CreateUser without one)
      and ForAnyValue:, true for the negated ones (StringNotEquals...),
      ...IfExists, ForAllValues: and Null "true". Other keys and operators
      are still ignored, as moto does (AWS would apply the same rule);
    - a statement whose condition is false does not apply (moto returned an
      explicit Deny from it, even for an Allow statement).
  With enforcement off, requests take moto's path untouched.
- enforces permissions boundaries (IAMRequestBase.check_action_permitted,
  every service, S3 too): with enforcement on, a request of an IAM user or
  an assumed role whose user/role has a boundary must also be allowed by
  the boundary policy's default version, evaluated as above (same ARNs,
  same conditions); a Deny in it, or no Allow, denies. moto 5.2.1 stores a
  role's boundary and ignores it, and has no user boundaries: moto_iam.py
  adds them (below). sts:GetCallerIdentity stays always allowed.
- decides sts:AssumeRole of a role that exists, with enforcement on, as
  AWS does (moto_sts.py, next to this file, says how): the role's trust
  policy must allow the caller (its user or role ARN, session ARN,
  account or "*"; conditions as above, with aws:PrincipalOrgID from moto's
  Organizations); the caller's identity policies must allow it too for
  another account's role or when only the account is named; a Deny in any
  denies. moto 5.2.1 ignores trust policies across accounts. A role that
  does not exist keeps moto's check (identity policies and boundary): the
  test bed enters fresh accounts through such roles. A denial is an
  AccessDenied (403), logged as the others.
- compares IAM names as IAM does, and adds user permissions boundaries
  (CreateUser's PermissionsBoundary, GetUser's PermissionsBoundary,
  PutUserPermissionsBoundary, DeleteUserPermissionsBoundary): moto_iam.py,
  next to this file, says what it patches.
- keeps a request's cost from growing with the accounts moto knows: the
  account of a request's access key found through an index, an account's
  backends found without listing every account (moto walked every account
  at every request for both): moto_scale.py, next to this file, says how.
  The answers are moto's.
- with MOTO_DENIALS_FILE set, appends one JSON line per denied request
  ({"action", "resources", "principal"}) to that file, a denial by a
  boundary alone included.

Usage: python moto_launcher.py [PORT]
"""
import json
import os
import re
import sys
import threading

os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto import settings  # noqa: E402
from moto.cloudtrail.responses import CloudTrailResponse  # noqa: E402
from moto.core.authorization import ActionAuthenticatorMixin  # noqa: E402
from moto.iam.access_control import IAMPolicyStatement, PermissionResult  # noqa: E402
from moto.kms.models import kms_backends  # noqa: E402
from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402
from moto.secretsmanager.models import secretsmanager_backends  # noqa: E402

import moto_iam  # noqa: E402  (this folder: IAM names without case, user boundaries)
import moto_sts  # noqa: E402  (this folder: sts:AssumeRole and trust policies)
import moto_scale  # noqa: E402, F401  (this folder: a request's cost kept from growing with the accounts)


def lookup_events(self: CloudTrailResponse) -> str:
    """cloudtrail:LookupEvents: no events recorded (moto records none)."""
    return json.dumps({"Events": []})


if not hasattr(CloudTrailResponse, "lookup_events"):
    CloudTrailResponse.lookup_events = lookup_events


# --- Resource-level authorization -------------------------------------------
# Each resolver maps a request (a moto BaseResponse, parameters parsed) and
# its action name to (ARNs to authorize, condition values). ARNs None = keep
# the resource moto chose ('*', or the role ARN for IAM role actions).


def _scope(r) -> tuple:
    """(partition, account, signing region) of the request."""
    credential = r.headers.get("Authorization", "").partition("Credential=")[2]
    parts = credential.split("/")
    region = parts[2] if len(parts) > 2 else r.region
    return r.partition, r.current_account, region


def _caller_user_name(r):
    """The IAM user owning the request's access key (None for a role)."""
    key_id = r.headers.get("Authorization", "").partition("Credential=")[2]
    key_id = key_id.partition("/")[0]
    for user in r.backend.users.values():
        if any(k.access_key_id == key_id for k in user.access_keys):
            return user.name
    return None


# IAM actions whose UserName defaults to the caller.
_IAM_SELF_ACTIONS = {
    "GetUser", "CreateAccessKey", "ListAccessKeys", "UpdateAccessKey",
    "DeleteAccessKey", "ListMFADevices", "ListSigningCertificates",
    "UploadSigningCertificate", "UpdateSigningCertificate",
    "DeleteSigningCertificate", "ListSSHPublicKeys",
    "ListServiceSpecificCredentials", "ChangePassword",
}


def _iam_named(r, action: str, kind: str, name: str) -> list:
    """user/group ARN(s): the existing entity's path and name as stored,
    found whatever the case of `name` (as IAM), no path if it does not exist
    (as AWS); Create*: the Path param; Update*: old and new ARN."""
    partition, account, _ = _scope(r)

    def arn(path: str, entity: str) -> str:
        return f"arn:{partition}:iam::{account}:{kind}{path}{entity}"

    title = kind.capitalize()
    if action == f"Create{title}":
        return [arn(r._get_param("Path") or "/", name)]
    existing = moto_iam.find(r.backend, kind, name)  # any case, as IAM
    path, name = (existing.path, existing.name) if existing else ("/", name)
    arns = [arn(path, name)]
    new_path, new_name = r._get_param("NewPath"), r._get_param(f"New{title}Name")
    if action == f"Update{title}" and (new_path or new_name):
        arns.append(arn(new_path or path, new_name or name))
    return arns


# Condition keys valued by the launcher (_iam_conditions): in every request
# they have a value or are absent (AWS's rules for a missing key apply).
_KEYS_KNOWN = {"iam:policyarn", "iam:permissionsboundary"}
_POLICY_ARN_ACTIONS = {
    f"{verb}{kind}Policy" for verb in ("Attach", "Detach")
    for kind in ("User", "Group", "Role")
}
# iam:PermissionsBoundary: the boundary the request sets, or the one its user
# or role has (IAM's Service Authorization Reference).
_BOUNDARY_SET = {
    "CreateUser", "PutUserPermissionsBoundary",
    "CreateRole", "PutRolePermissionsBoundary",
}
_BOUNDARY_HELD = {
    action.format(kind) for kind in ("User", "Role") for action in (
        "Attach{}Policy", "Detach{}Policy", "Put{}Policy", "Delete{}Policy",
        "Delete{}PermissionsBoundary",
    )
}


def _iam_conditions(r, action: str) -> dict:
    """iam:PolicyARN and iam:PermissionsBoundary of the request (None:
    absent)."""
    boundary = None
    if action in _BOUNDARY_SET:
        boundary = r._get_param("PermissionsBoundary")
    elif action in _BOUNDARY_HELD:
        kind = "role" if "Role" in action else "user"
        entity = moto_iam.find(r.backend, kind, r._get_param(f"{kind.capitalize()}Name"))
        boundary = entity.permissions_boundary_arn if entity else None
    policy_arn = r._get_param("PolicyArn") if action in _POLICY_ARN_ACTIONS else None
    return {"iam:PolicyARN": policy_arn or None, "iam:PermissionsBoundary": boundary or None}


def _iam(r, action: str) -> tuple:
    partition, account, _ = _scope(r)
    conditions = _iam_conditions(r, action)
    if r._get_param("RoleName"):
        return None, conditions  # moto's role handling
    if r._get_param("GroupName"):  # AddUserToGroup, RemoveUserFromGroup too
        return _iam_named(r, action, "group", r._get_param("GroupName")), conditions
    user = r._get_param("UserName")
    if user is None and action in _IAM_SELF_ACTIONS:
        user = _caller_user_name(r)
    if user:
        return _iam_named(r, action, "user", user), conditions
    policy_arn = r._get_param("PolicyArn")
    if policy_arn:  # the stored policy's ARN, whatever the case given
        stored = r.backend.managed_policies.get(policy_arn)
        return [stored.arn if stored else policy_arn], conditions
    if action == "CreatePolicy":
        path, name = r._get_param("Path") or "/", r._get_param("PolicyName")
        return [f"arn:{partition}:iam::{account}:policy{path}{name}"], conditions
    return None, conditions


def _secretsmanager(r, action: str) -> tuple:
    partition, account, region = _scope(r)
    base = f"arn:{partition}:secretsmanager:{region}:{account}:secret:"
    # aws:TagKeys: the tag keys the request writes or removes (None: absent).
    if action == "UntagResource":
        keys = r._get_param("TagKeys") or []
    else:  # TagResource, CreateSecret
        keys = [t.get("Key") for t in r._get_param("Tags") or [] if isinstance(t, dict)]
    conditions = {"aws:TagKeys": [str(k) for k in keys] or None}
    if action == "CreateSecret":
        # AWS evaluates CreateSecret against the ARN to be, random suffix
        # included: "secret:NAME-*" and "secret:NAME-??????" both match.
        return [f"{base}{r._get_param('Name')}-??????"], conditions
    secret_id = r._get_param("SecretId")
    if not secret_id:
        return None, conditions  # ListSecrets, GetRandomPassword, BatchGetSecretValue
    secret = secretsmanager_backends[account][r.region].secrets.get(secret_id)
    if secret is not None:
        return [secret.arn], conditions
    return [secret_id if secret_id.startswith("arn:") else base + secret_id], conditions


_TRAIL_NAME_ACTIONS = {
    "CreateTrail", "GetTrail", "GetTrailStatus", "UpdateTrail", "DeleteTrail",
    "StartLogging", "StopLogging",
}


def _cloudtrail(r, action: str) -> tuple:
    partition, account, region = _scope(r)
    names = [r._get_param("Name")] if action in _TRAIL_NAME_ACTIONS else []
    names += [r._get_param(p) for p in ("TrailName", "TrailARN", "ResourceId")]
    names += r._get_param("ResourceIdList") or []
    arns = [
        n if n.startswith("arn:") else f"arn:{partition}:cloudtrail:{region}:{account}:trail/{n}"
        for n in names
        if n
    ]
    return arns or None, {}


def _sns(r, action: str) -> tuple:
    partition, account, region = _scope(r)
    if action == "CreateTopic":
        return [f"arn:{partition}:sns:{region}:{account}:{r._get_param('Name')}"], {}
    arn = r._get_param("TopicArn") or r._get_param("ResourceArn")
    return ([arn] if arn else None), {}


def _kms(r, action: str) -> tuple:
    partition, account, region = _scope(r)
    key_id = r._get_param("KeyId")
    if not key_id:
        return None, {}
    # "key/ID" or "alias/NAME" from an ARN, else the id or alias name itself.
    name = key_id.split(":", 5)[-1] if key_id.startswith("arn:") else key_id
    keys = kms_backends[account][r.region].keys
    if name.startswith("alias/"):
        key = next((k for k in keys.values() if name in k.aliases), None)
    else:
        name = name.removeprefix("key/")
        key = keys.get(name)
        name = f"key/{name}"
    return [key.arn if key else f"arn:{partition}:kms:{region}:{account}:{name}"], {}


def _dynamodb(r, action: str) -> tuple:
    partition, account, region = _scope(r)
    names = [r._get_param("TableName"), r._get_param("ResourceArn")]
    names += list(r._get_param("RequestItems") or {})  # Batch{Get,Write}Item
    for item in r._get_param("TransactItems") or []:  # Transact{Get,Write}Items
        names += [op.get("TableName") for op in item.values() if isinstance(op, dict)]
    arns = [
        n if n.startswith("arn:") else f"arn:{partition}:dynamodb:{region}:{account}:table/{n}"
        for n in names
        if n
    ]
    index = r._get_param("IndexName")  # Query, Scan
    return ([f"{arns[0]}/index/{index}"] if index and len(arns) == 1 else arns or None), {}


_RESOLVERS = {
    "iam": _iam,
    "secretsmanager": _secretsmanager,
    "cloudtrail": _cloudtrail,
    "sns": _sns,
    "kms": _kms,
    "dynamodb": _dynamodb,
}

# Condition values of the request being authorized, for the policy
# statements evaluated below it (the server runs one thread per request).
_authorizing = threading.local()
_moto_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action


def _authenticate_and_authorize_normal_action(self, resource: str = "*") -> None:
    """Wraps moto's: same signature check and policy evaluation, run once
    per resource ARN of the request (each must be allowed)."""
    resolver = _RESOLVERS.get(getattr(self, "service_name", None))
    enforced = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT
    if resolver is None or not enforced:
        return _moto_authorize(self, resource)
    arns, _authorizing.conditions = resolver(self, self._get_action())
    try:
        for arn in arns or [resource]:
            _moto_authorize(self, arn)
    finally:
        _authorizing.conditions = None


ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = (
    _authenticate_and_authorize_normal_action
)


def _wildcard(pattern, value: str):
    """IAM wildcard match: '*' any run of characters, '?' exactly one."""
    regex = re.escape(str(pattern)).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, re.DOTALL)


def _glob(pattern, value: str) -> bool:
    return _wildcard(pattern, value) is not None


def _arn_like(pattern, value: str) -> bool:
    """ArnLike/ArnEquals: each of the six ARN components matched apart."""
    parts, values = str(pattern).split(":", 5), value.split(":", 5)
    if len(parts) != 6:
        return _glob(pattern, value)
    return len(values) == 6 and all(map(_glob, parts, values))


def _any_of(match):
    return lambda actual, expected: any(match(e, actual) for e in expected)


def _none_of(match):
    return lambda actual, expected: not any(match(e, actual) for e in expected)


def _equals(e, a: str) -> bool:
    return str(e) == a


def _equals_ignore_case(e, a: str) -> bool:
    return str(e).lower() == a.lower()


_CONDITION_OPERATORS = {
    "StringEquals": _any_of(_equals),
    "StringNotEquals": _none_of(_equals),
    "StringEqualsIgnoreCase": _any_of(_equals_ignore_case),
    "StringNotEqualsIgnoreCase": _none_of(_equals_ignore_case),
    "StringLike": _any_of(_glob),
    "StringNotLike": _none_of(_glob),
    "ArnEquals": _any_of(_arn_like),
    "ArnLike": _any_of(_arn_like),
    "ArnNotEquals": _none_of(_arn_like),
    "ArnNotLike": _none_of(_arn_like),
    # a value is known: Null holds if it expects "false"
    "Null": lambda actual, expected: any(str(e).lower() == "false" for e in expected),
}


def _holds_when_absent(operator: str, expected: list) -> bool:
    """AWS's rule for a condition on a key the request does not have."""
    if operator == "Null":
        return any(str(e).lower() == "true" for e in expected)
    if operator.endswith("IfExists") or operator.startswith("ForAllValues:"):
        return True
    if operator.startswith("ForAnyValue:"):
        return False
    return "Not" in operator  # StringNotEquals, ArnNotLike...: true


def _check_conditions(self, incoming_condition_values) -> bool:
    """Replaces moto's (StringEquals only). Operators of a block are ANDed,
    keys ANDed, a key's values ORed (NORed for the negated operators). A key
    of incoming_condition_values valued None is known and absent (as are
    _KEYS_KNOWN when missing): moto_sts.py's keys of an AssumeRole."""
    known = {k.lower(): v for k, v in (incoming_condition_values or {}).items()}
    for operator, block in (self._statement.get("Condition") or {}).items():
        # ForAllValues:/ForAnyValue: apply the operator to each value of a
        # multi-valued key (aws:TagKeys).
        qualifier, _, base = operator.rpartition(":")
        test = _CONDITION_OPERATORS.get(base.removesuffix("IfExists"))
        if test is not None and qualifier in ("ForAllValues", "ForAnyValue"):
            test = _for_all_values(test) if qualifier == "ForAllValues" else _for_any_value(test)
        elif qualifier:
            test = None
        elif test is not None:  # a plain operator on a multi-valued key: one value
            test = _for_any_value(test)
        for key, expected in block.items():
            expected = expected if isinstance(expected, list) else [expected]
            actual = known.get(key.lower())
            if actual is None and (key.lower() in _KEYS_KNOWN or key.lower() in known):
                # A key this launcher values, absent from this request.
                if not _holds_when_absent(operator, expected):
                    return False
                continue
            # moto's behaviour, kept: an operator not listed above (Bool,
            # Numeric*, Date*...) or a key for which no value
            # is known (all but _KEYS_KNOWN, sts:ExternalId and, for an
            # AssumeRole, moto_sts.py's) is ignored; AWS would treat a
            # missing key as _holds_when_absent does.
            if test is None or actual is None:
                continue
            if not test(actual, expected):
                return False
    return True


def _for_all_values(test):
    """ForAllValues:OP: every value of the request's key satisfies OP."""
    return lambda actual, expected: all(
        test(str(a), expected) for a in (actual if isinstance(actual, list) else [actual]))


def _for_any_value(test):
    """ForAnyValue:OP: at least one value of the request's key satisfies OP."""
    return lambda actual, expected: any(
        test(str(a), expected) for a in (actual if isinstance(actual, list) else [actual]))


_moto_statement_permits = IAMPolicyStatement.is_action_permitted


def _statement_is_action_permitted(
    self, action, resource="*", principal=None, incoming_condition_values=None
):
    """Wraps moto's: passes the request's condition values, and a statement
    whose condition is false does not apply (moto: explicit Deny)."""
    if incoming_condition_values is None:
        incoming_condition_values = getattr(_authorizing, "conditions", None)
    if not self._check_conditions(incoming_condition_values):
        return PermissionResult.NEUTRAL
    return _moto_statement_permits(
        self, action, resource, principal, incoming_condition_values
    )


IAMPolicyStatement._check_conditions = _check_conditions
IAMPolicyStatement.is_action_permitted = _statement_is_action_permitted
IAMPolicyStatement._match = staticmethod(_wildcard)  # Action, NotAction, Resource


# --- Permissions boundary, denial log (MOTO_DENIALS_FILE) -------------------
# tests/support/mod.rs sets MOTO_DENIALS_FILE and reads one JSON line
# {"action", "resources", "principal"} per request moto denies: a test of
# least privilege can then tell "nothing was refused" from "a refusal was
# swallowed somewhere".
from moto.iam.access_control import IAMRequestBase  # noqa: E402

_DENIALS_FILE = os.environ.get("MOTO_DENIALS_FILE")
_denials_lock = threading.Lock()
_moto_check_action_permitted = IAMRequestBase.check_action_permitted


def _check_action_permitted(self, resource: str) -> None:
    """Wraps moto's (every service, S3 too): then the caller's permissions
    boundary must allow it too; sts:AssumeRole of a role that exists is
    decided by moto_sts.py instead (its trust policy, the caller's identity
    policies and boundary). Records a denial, re-raises."""
    try:
        assume = self._action == "sts:AssumeRole"
        role = moto_sts.target_role(resource) if assume else None
        if role is not None:
            if not moto_sts.assume_role_permitted(self, role):
                self._raise_access_denied()
            return
        _moto_check_action_permitted(self, resource)
        # sts:GetCallerIdentity: always allowed (moto's exception, as AWS).
        exempt = self._action == "sts:GetCallerIdentity"
        if not exempt and not moto_iam.boundary_permits(self, resource):
            self._raise_access_denied()
    except Exception:
        if _DENIALS_FILE:
            line = {"action": self._action, "resources": [resource],
                    "principal": self._access_key.arn}
            with _denials_lock, open(_DENIALS_FILE, "a") as f:
                f.write(json.dumps(line) + "\n")
        raise


IAMRequestBase.check_action_permitted = _check_action_permitted


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _, bound = server.get_host_and_port()
    print(json.dumps({"port": bound}), flush=True)
    # Nothing else goes to stdout: the parent reads only the first line and
    # may close the pipe (moto prints warnings there, e.g. about docker,
    # which would then fail or block a request).
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    # Block until the parent closes our stdin (or dies), then stop at once.
    for _ in sys.stdin:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
