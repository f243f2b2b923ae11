"""Checks moto_scale.py, as the launcher loads it (with moto_iam.py); run by
the testbed's unit test (moto.rs). Exits 0 after printing "ok", or 1 with
what failed.

- the account of a key is moto's own walk's answer for every key: an
  assumed role's and a user's, in the aws and aws-cn partitions, after
  DeleteAccessKey (the default account, as moto), after the account's IAM
  is reset, and for a key no account holds;
- the work of finding it does not grow with the accounts moto knows: the
  Python calls made for the key of the last of 1,000 accounts, and for a
  key none holds, are no more than with 10 (moto's walk makes a few for
  every account and partition);
- BackendDict[account] returns the same backends as before, makes those
  of a new account as moto does, and takes moto's creation step (which
  lists every account under a lock) only for a new account.
"""
import os
import sys

os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import moto.iam.models as iam_models  # noqa: E402
from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.core.base_backend import BackendDict  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.secretsmanager.models import secretsmanager_backends  # noqa: E402

import moto_iam  # noqa: E402, F401  (as the launcher: both wrap IAMBackend.__init__)
import moto_scale  # noqa: E402

failures = []


def check(what, got, want):
    if got != want:
        failures.append(f"{what}: got {got!r}, want {want!r}")


def find(key):
    """The account moto's request handling finds for the key."""
    return iam_models.get_account_id_from(key)


def walk(key):
    return moto_scale._moto_get_account_id_from(key)


def account(n):
    return f"{200000000000 + n:012d}"


def calls(fn, *args):
    """The Python function calls fn makes (a count of work, not a time)."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event == "call":
            count += 1

    sys.setprofile(profile)
    try:
        fn(*args)
    finally:
        sys.setprofile(None)
    return count


# Each account enters moto as the test bed's do: an assumed role's key.
temp = {}
for n in range(1000):
    temp[account(n)] = iam_backends[account(n)]["aws"].create_temp_access_key().access_key_id
    if n == 9:
        few = calls(find, temp[account(9)])
        few_unknown = calls(find, "testing")
many = calls(find, temp[account(999)])
many_unknown = calls(find, "testing")
check("calls for the last of 1,000 accounts' key, at most those of 10", many <= few, True)
check("calls for a key none of 1,000 holds, at most those of 10", many_unknown <= few_unknown, True)

for n in (0, 9, 500, 999):
    check(f"assumed role's key of account {n}", find(temp[account(n)]), account(n))

backend = iam_backends[account(7)]["aws"]
backend.create_user("us-east-1", "function")
user_key = backend.create_access_key("function").access_key_id
check("a user's key", find(user_key), account(7))
china = iam_backends[account(8)]["aws-cn"].create_temp_access_key().access_key_id
check("a key in aws-cn", find(china), account(8))
backend.delete_access_key(user_key, "function")
check("a deleted key", find(user_key), DEFAULT_ACCOUNT_ID)
iam_backends[account(8)].reset()
check("a key of an account reset", find(china), DEFAULT_ACCOUNT_ID)
check("a key no account holds", find("testing"), DEFAULT_ACCOUNT_ID)

for key in [temp[account(n)] for n in (0, 3, 999)] + [user_key, china, "testing"]:
    check(f"moto's own answer for {key}", find(key), walk(key))

# BackendDict[account]: moto's creation step only for a new account.
made = []
moto_create = BackendDict._create_account_specific_backend


def counted_create(self, account_id):
    made.append(account_id)
    return moto_create(self, account_id)


BackendDict._create_account_specific_backend = counted_create
existing = iam_backends[account(3)]
check("an existing account's backends", existing is dict.__getitem__(iam_backends, account(3)), True)
check("the user made in account 7, found again", "function" in iam_backends[account(7)]["aws"].users, True)
secrets = secretsmanager_backends[account(1234)]["us-east-1"]
check("a new account's backends, made by moto", secrets.account_id, account(1234))
check("the same backends again", secretsmanager_backends[account(1234)]["us-east-1"] is secrets, True)
check("moto's creation step taken", made, [account(1234)])
BackendDict._create_account_specific_backend = moto_create

if failures:
    print("\n".join(failures))
    sys.exit(1)
print(
    f"ok ({few} calls for the key of the last of 10 accounts, {many} of 1,000; "
    f"{few_unknown} and {many_unknown} for a key none holds)"
)
