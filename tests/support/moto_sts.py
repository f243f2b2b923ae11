"""sts:AssumeRole of an existing role: its trust policy, as AWS evaluates it.
Imported by moto_launcher.py, which calls assume_role_permitted for every
sts:AssumeRole under IAM enforcement whose role exists.

moto 5.2.1 hands out credentials for any role ARN ("the role does not need
to exist"). It checks a trust policy only for a role of the caller's own
account (and then wants the identity policy too), matching its Principal
against the caller's session ARN (a trust policy naming the caller's role
never matches) or user ARN without its path (by substring when "AWS" is
one string); another account's role is assumed whatever its trust policy.

With enforcement on, for a role that exists (in the account of its ARN,
found whatever the case of its name), the request is allowed as AWS allows
it (IAM User Guide, "Policy evaluation logic": role trust policies must
always allow the principal; cross-account, the caller's identity policy
must allow too; within one account, a trust policy naming the principal
suffices, as for any resource-based policy):
  - an explicit Deny that applies, in the trust policy, the caller's
    identity policies or its permissions boundary: denied;
  - the trust policy must have an Allow for sts:AssumeRole whose Principal
    names the caller. {"AWS": [...]} entries: the caller's user ARN or
    role ARN (path included), its session ARN
    (arn:aws:sts::A:assumed-role/NAME/SESSION), "*" (as Principal "*"), or
    its account ("123456789012", "arn:aws:iam::123456789012:root"); ARNs
    compared without case (IAM names; AWS keeps a principal as the
    entity's unique id). "Service", "Federated" and "CanonicalUser" never
    name an IAM caller. NotPrincipal: a Deny applies to every caller not
    listed; an Allow with NotPrincipal allows no one (not evaluated);
  - the account named only ("account" principal), or another account's
    role: the caller's identity policies must allow sts:AssumeRole on the
    role ARN, and its boundary (if any) too;
  - same account, the caller named (its ARN, session ARN or "*"): no
    identity policy needed; a boundary that does not allow it still denies,
    unless the trust policy names the user's ARN or the session's ARN
    (AWS: those grants are not limited by a boundary; a grant to a role ARN
    is).
  Conditions of all three policies see (moto_launcher's operators, absent
  keys as AWS): aws:PrincipalArn (the user's or the session's role ARN),
  aws:PrincipalAccount, aws:PrincipalOrgID (the organization, in moto's
  Organizations, of the caller's account, as management account or member;
  absent if none), sts:ExternalId (absent if not given). Not done: session
  policies (moto stores them and never applies them), sts:TagSession,
  aws:PrincipalTag and the other keys, SCPs.
A role that does not exist keeps moto's check (the caller's identity policy
and boundary), and with enforcement off nothing here runs.
"""
import json

from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.organizations.models import organizations_backends
from moto.utilities.utils import get_partition

import moto_iam  # this folder

# How a trust policy's Principal names the caller, weakest first.
_ACCOUNT, _NAMED, _EXACT = 1, 2, 3


def target_role(role_arn: str):
    """The existing role `role_arn` names, in the account of the ARN, or
    None (no backend is created for an account never seen)."""
    parts = str(role_arn).split(":", 5)
    if len(parts) != 6 or parts[2] != "iam":
        return None
    account = dict.get(iam_backends, parts[4])
    backend = dict.get(account, parts[1]) if account is not None else None
    if backend is None:
        return None
    try:
        return backend.get_role_by_arn(role_arn)
    except NotFoundException:
        return None


def organization_id(account: str, partition: str):
    """The id of the organization `account` belongs to, None if none."""
    backends = dict.get(organizations_backends, account)
    own = dict.get(backends, partition) if backends is not None else None
    if own is not None and own.org is not None:  # the management account
        return own.org.id
    management = organizations_backends.master_accounts.get(account)
    if management is None:
        return None
    org = organizations_backends[management[0]][management[1]].org
    return org.id if org else None


def _caller(request, partition: str) -> tuple:
    """(ARN, session ARN or None) of the caller: an IAM user (path
    included), or a role session and its role."""
    key = request._access_key
    user_name = getattr(key, "_owner_user_name", None)
    if user_name is not None:
        user = key.backend.users.get(user_name)
        return (user.arn if user else key.arn), None
    name = key._owner_role_name
    role = moto_iam.find(key.backend, "role", name)
    return (role.arn if role else f"arn:{partition}:iam::{key.account_id}:role/{name}"), key.arn


def _names(principal, caller: tuple, account: str, partition: str) -> int:
    """How `principal` (a statement's Principal) names the caller: _EXACT,
    _NAMED, _ACCOUNT or 0."""
    if principal == "*":
        return _NAMED
    entries = principal.get("AWS", []) if isinstance(principal, dict) else []
    arn, session = (a.lower() if a else None for a in caller)
    best = 0
    for entry in entries if isinstance(entries, list) else [entries]:
        entry = str(entry).lower()
        if entry == "*":
            best = max(best, _NAMED)
        elif entry in (account, f"arn:{partition}:iam::{account}:root"):
            best = max(best, _ACCOUNT)
        elif entry == session or (entry == arn and session is None):
            best = _EXACT
        elif entry == arn:  # a session's role
            best = max(best, _NAMED)
    return best


def _trust(role, action, caller: tuple, account, partition, values: dict) -> tuple:
    """(explicitly denied, how the strongest Allow names the caller)."""
    statements = json.loads(role.assume_role_policy_document).get("Statement", [])
    denied, allowed = False, 0
    for statement in statements if isinstance(statements, list) else [statements]:
        s = IAMPolicyStatement(statement)
        if "NotAction" in statement:
            concerned = not s._check_element_matches("NotAction", action)
        else:
            concerned = "Action" in statement and s._check_element_matches("Action", action)
        deny = statement.get("Effect") == "Deny"
        if "NotPrincipal" in statement:  # a Deny of all those not listed
            listed = _names(statement["NotPrincipal"], caller, account, partition)
            named = _NAMED if deny and not listed else 0
        else:
            named = _names(statement.get("Principal"), caller, account, partition)
        if not (concerned and named and s._check_conditions(values)):
            continue
        if deny:
            denied = True
        else:
            allowed = max(allowed, named)
    return denied, allowed


def _identity(request, resource: str, values: dict):
    """The caller's identity policies on `resource`: a PermissionResult."""
    result = PermissionResult.NEUTRAL
    for policy in request._access_key.collect_policies():
        r = IAMPolicy(policy).is_action_permitted(
            request._action, resource, incoming_condition_values=values
        )
        if r == PermissionResult.DENIED:
            return r
        if r == PermissionResult.PERMITTED:
            result = r
    return result


def assume_role_permitted(request, role) -> bool:
    """sts:AssumeRole of `role` (it exists) by the request's caller (a moto
    IAMRequestBase), as AWS decides it (module docstring)."""
    partition = get_partition(request._region)
    account = request.account_id
    caller = _caller(request, partition)
    external_id = request._data.get("ExternalId")
    if isinstance(external_id, list):  # the form's values
        external_id = external_id[0] if external_id else None
    values = {  # None: known, and absent from the request
        "aws:PrincipalArn": caller[0],
        "aws:PrincipalAccount": account,
        "aws:PrincipalOrgID": organization_id(account, partition),
        "sts:ExternalId": external_id or None,
    }
    identity = _identity(request, role.arn, values)
    boundary = moto_iam.boundary_result(request, role.arn, values)
    denied, named = _trust(role, request._action, caller, account, partition, values)
    if denied or named == 0 or PermissionResult.DENIED in (identity, boundary):
        return False
    if named == _ACCOUNT or role.account_id != account:
        return identity == boundary == PermissionResult.PERMITTED
    return boundary == PermissionResult.PERMITTED or named == _EXACT
