"""IAM model patches for moto 5.2.1, imported by moto_launcher.py.

- names compared as IAM compares them. In AWS, user, group, role, instance
  profile and policy names are not distinguished by case ("Defender" and
  "defender" are one user: CreateUser "defender" then fails with
  EntityAlreadyExists, GetUser "DEFENDER" returns "Defender", spelled as
  created). moto compares them by case. Every IAMBackend (each account and
  partition, created lazily by moto, and again at each reset) gets, after
  moto's __init__:
    users, groups, instance_profiles  (dicts keyed by name) and
    managed_policies  (keyed by ARN)
  as _NoCaseDict: keys compared without case, kept as first spelled. Every
  moto lookup through those dicts (get_user, create_user's duplicate check,
  delete_user, get_group, get_policy, create_policy's check...) then finds
  the entity whatever the case. A policy ARN is compared whole without case
  (AWS does not distinguish policy names by case either; the path is
  compared without case too here, and names stay unique per path, as in
  moto: AWS documents them as unique in the account).
  Roles are kept by id: get_role, get_role_by_arn and create_role's
  duplicate check compare names without case. Attach*/Detach*Policy build
  their own ARN dict: the policy_arn they get is first replaced with the
  stored policy's ARN. update_user refuses a new name another user has
  (EntityAlreadyExists; moto overwrote that user). Not done: a group
  renamed only in case is refused (moto checks the new name first).
- user permissions boundaries, which moto 5.2.1 keeps for roles only:
  User gets permissions_boundary_arn and the property permissions_boundary
  (moto's serializer reads it for GetUser and CreateUser, as it does for
  roles; ListUsers never returns it, as AWS); IamResponse.create_user reads
  PermissionsBoundary (a policy ARN, validated as moto validates a role's:
  InvalidParameterValue; whether the policy exists is not checked, as for
  roles); IamResponse gets put_user_permissions_boundary and
  delete_user_permissions_boundary, dispatched by moto's call_action after
  its authorization, like every IAM action; IAMBackend gets the methods of
  the same names. boundary_permits (below) evaluates the caller's boundary,
  its user's or its role's; moto_launcher.py calls it for every request
  under enforcement (moto_sts.py, for an AssumeRole of an existing role,
  boundary_result: a Deny told from no Allow). Not done: AWS::IAM::User's
  PermissionsBoundary in a CloudFormation template (moto ignores it).
"""
from moto.core.responses import ActionResult, EmptyResult
from moto.core.serialize import never_return, return_if_not_empty
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.exceptions import EntityAlreadyExists, IAMException, NotFoundException
from moto.iam.models import IAMBackend, User
from moto.iam.responses import IamResponse


class _NoCaseDict(dict):
    """A dict whose str keys compare without case; a key keeps the spelling
    it was first stored with (iteration, keys() and items() show it)."""

    def __init__(self, items=()):
        items = dict(items)  # at once (1,400 AWS managed policies per backend)
        self._spelling = {k.lower(): k for k in items if isinstance(k, str)}
        if len(self._spelling) == sum(isinstance(k, str) for k in items):
            super().__init__(items)
        else:  # names equal but for case: the first spelling wins
            super().__init__()
            self._spelling = {}
            self.update(items)

    def _stored(self, key):
        return self._spelling.get(key.lower(), key) if isinstance(key, str) else key

    def __getitem__(self, key):
        return super().__getitem__(self._stored(key))

    def __contains__(self, key):
        return super().__contains__(self._stored(key))

    def __setitem__(self, key, value):
        stored = self._stored(key)
        if isinstance(key, str):
            self._spelling[key.lower()] = stored
        super().__setitem__(stored, value)

    def __delitem__(self, key):
        stored = self._stored(key)
        super().__delitem__(stored)
        if isinstance(stored, str):
            del self._spelling[stored.lower()]

    def get(self, key, default=None):
        return super().get(self._stored(key), default)

    def pop(self, key, *default):
        if key in self:
            value = self[key]
            del self[key]
            return value
        return super().pop(key, *default)

    def popitem(self):
        key, value = super().popitem()
        if isinstance(key, str):
            del self._spelling[key.lower()]
        return key, value

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self):
        super().clear()
        self._spelling.clear()

    def copy(self):
        return type(self)(self)

    def __reduce__(self):
        return type(self), (dict(self),)


# --- Names without case ------------------------------------------------------
_moto_backend_init = IAMBackend.__init__


def _backend_init(self, region_name, account_id):
    _moto_backend_init(self, region_name, account_id)
    for attribute in ("users", "groups", "instance_profiles", "managed_policies"):
        setattr(self, attribute, _NoCaseDict(getattr(self, attribute)))


def _same_name(a, b) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


def _get_role(self, role_name):
    for role in self.get_roles():
        if _same_name(role.name, role_name):
            return role
    raise NotFoundException(f"Role {role_name} not found")


def _get_role_by_arn(self, arn):
    for role in self.get_roles():
        if _same_name(role.arn, arn):
            return role
    raise NotFoundException(f"Role {arn} not found")


_moto_create_role = IAMBackend.create_role


def _create_role(self, role_name, *args, **kwargs):
    if any(_same_name(role.name, role_name) for role in self.get_roles()):
        raise EntityAlreadyExists(f"Role with name {role_name} already exists.")
    return _moto_create_role(self, role_name, *args, **kwargs)


_moto_update_user = IAMBackend.update_user


def _update_user(self, user_name, new_path=None, new_user_name=None):
    user = self.users.get(user_name)
    other = self.users.get(new_user_name) if new_user_name else None
    if user is not None and other is not None and other is not user:
        raise EntityAlreadyExists(f"User {new_user_name} already exists")
    _moto_update_user(self, user_name, new_path, new_user_name)


def _with_stored_policy_arn(moto_method):
    """Attach*/Detach*Policy: the policy_arn given, replaced with the ARN of
    the stored policy it names (moto looks it up in a dict of its own)."""

    def method(self, policy_arn, *args, **kwargs):
        policy = self.managed_policies.get(policy_arn)
        return moto_method(self, policy.arn if policy else policy_arn, *args, **kwargs)

    return method


IAMBackend.__init__ = _backend_init
IAMBackend.get_role = _get_role
IAMBackend.get_role_by_arn = _get_role_by_arn
IAMBackend.create_role = _create_role
IAMBackend.update_user = _update_user
for _verb in ("attach", "detach"):
    for _kind in ("user", "group", "role"):
        _name = f"{_verb}_{_kind}_policy"
        setattr(IAMBackend, _name, _with_stored_policy_arn(getattr(IAMBackend, _name)))


def find(backend, kind: str, name):
    """The existing user, group or role named `name` in any case, or None."""
    if not name:
        return None
    if kind == "role":
        try:
            return backend.get_role(name)
        except NotFoundException:
            return None
    return getattr(backend, f"{kind}s").get(name)


# --- User permissions boundaries --------------------------------------------
User.permissions_boundary_arn = None
User.permissions_boundary = property(
    lambda self: {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
        "PermissionsBoundaryArn": self.permissions_boundary_arn,
    }
    if self.permissions_boundary_arn
    else None
)


def _check_boundary_arn(backend, boundary) -> None:
    """As moto's create_role and put_role_permissions_boundary."""
    if boundary and not backend.policy_arn_regex.match(boundary):
        raise IAMException(
            "InvalidParameterValue",
            f"Value ({boundary}) for parameter PermissionsBoundary is invalid.",
        )


def _put_user_permissions_boundary(self, user_name, permissions_boundary) -> None:
    _check_boundary_arn(self, permissions_boundary)
    self.get_user(user_name).permissions_boundary_arn = permissions_boundary


def _delete_user_permissions_boundary(self, user_name) -> None:
    self.get_user(user_name).permissions_boundary_arn = None


IAMBackend.put_user_permissions_boundary = _put_user_permissions_boundary
IAMBackend.delete_user_permissions_boundary = _delete_user_permissions_boundary


def _response_create_user(self) -> ActionResult:
    """moto's, and the PermissionsBoundary parameter (checked first)."""
    boundary = self._get_param("PermissionsBoundary")
    _check_boundary_arn(self.backend, boundary)
    user = self.backend.create_user(
        self.region,
        user_name=self._get_param("UserName"),
        path=self._get_param("Path"),
        tags=self._get_param("Tags", []),
    )
    user.permissions_boundary_arn = boundary or None
    return ActionResult({"User": user})


def _response_put_user_permissions_boundary(self) -> EmptyResult:
    self.backend.put_user_permissions_boundary(
        self._get_param("UserName"), self._get_param("PermissionsBoundary")
    )
    return EmptyResult()


def _response_delete_user_permissions_boundary(self) -> EmptyResult:
    self.backend.delete_user_permissions_boundary(self._get_param("UserName"))
    return EmptyResult()


IamResponse.create_user = _response_create_user
IamResponse.put_user_permissions_boundary = _response_put_user_permissions_boundary
IamResponse.delete_user_permissions_boundary = _response_delete_user_permissions_boundary
IamResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER.update({
    "CreateUserResponse.User.PermissionsBoundary": return_if_not_empty,
    "GetUserResponse.User.PermissionsBoundary": return_if_not_empty,
    "ListUsersResponse.Users.User.PermissionsBoundary": never_return,
})


def boundary_arn(access_key):
    """The permissions boundary of the caller (a moto IAMUserAccessKey or
    AssumedRoleAccessKey): its user's or its role's, None if it has none."""
    backend = access_key.backend
    user_name = getattr(access_key, "_owner_user_name", None)
    if user_name is not None:
        user = backend.users.get(user_name)
        return user.permissions_boundary_arn if user else None
    role = find(backend, "role", getattr(access_key, "_owner_role_name", None))
    return role.permissions_boundary_arn if role else None


def boundary_result(request, resource: str, conditions=None) -> PermissionResult:
    """What the caller's permissions boundary says of the request's action on
    the resource (request: a moto IAMRequestBase): the boundary policy's
    default version, evaluated as moto evaluates identity policies (as
    patched by moto_launcher.py: resource ARNs, conditions: `conditions`,
    else the request's); DENIED (a Deny), NEUTRAL (no Allow) or PERMITTED.
    No boundary: PERMITTED; a boundary whose policy is gone allows nothing."""
    arn = boundary_arn(request._access_key)
    if not arn:
        return PermissionResult.PERMITTED
    policy = request.backend.managed_policies.get(arn)
    if policy is None:
        return PermissionResult.NEUTRAL
    return IAMPolicy(policy).is_action_permitted(
        request._action, resource, incoming_condition_values=conditions
    )


def boundary_permits(request, resource: str) -> bool:
    """The caller's permissions boundary allows the request (a Deny, or no
    Allow: no; no boundary: yes)."""
    return boundary_result(request, resource) == PermissionResult.PERMITTED
