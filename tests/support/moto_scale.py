"""moto 5.2.1's cost of a request, kept from growing with the accounts it
knows; imported by moto_launcher.py.

On AWS a request costs the same in an organization of 10 accounts or of
1,000. In moto two steps of every request walked every account moto knows,
so that with 1,000 accounts (the hub benchmark's stack set, py-spy's
samples of moto's one Python lock) they took about half of moto's time,
every request waited on them, and a member's Create took about 1.7 times
as long as with 100:

- the account of a request that does not name one (x-moto-account-id) is
  found from its access key: get_account_id_from walks every account's IAM
  backend in every partition until one holds the key (the test bed's
  assumed roles, an IAM user's keys, the portal emulator's tests of a
  member's key), and walks them all for a key none holds (the test bed's
  base credentials);
- BackendDict[account] (iam_backends[...], secretsmanager_backends[...],
  at every request) lists every account it knows, under a lock, to decide
  whether to make the account's backends, even when they exist.

Here every IAMBackend (each account and partition, made lazily by moto,
and again at each reset) keeps its access_keys in a dict that also records,
in one index, the account of each key stored in it, however it is stored.
get_account_id_from looks the key up there: a key the index does not name
is held by no backend (moto's walk returns the default account), and an
account it names is trusted only while one of that account's backends
still holds the key (after a reset or a deletion, moto's walk decides).
BackendDict[account] returns the account's backends when they exist and
takes moto's path only to make them. The answers are moto's in every case;
only their cost changes (moto_scale_check.py, run by the test bed's unit
test in moto.rs, checks both).
"""
import moto.iam.models as iam_models
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.base_backend import BackendDict
from moto.iam.models import IAMBackend, iam_backends

# access key id -> the account whose backend stored it last.
_OWNER: dict = {}


class _IndexedKeys(dict):
    """An IAMBackend's access_keys: each key stored is indexed by account."""

    def __init__(self, account_id: str, items=()):
        super().__init__()
        self._account = account_id
        self.update(items)

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        _OWNER[key] = self._account

    def __delitem__(self, key):
        super().__delitem__(key)
        if _OWNER.get(key) == self._account:
            del _OWNER[key]

    def update(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other):
        self.update(other)
        return self

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def __reduce__(self):
        return type(self), (self._account, dict(self))


def _holds(account_id: str, access_key: str) -> bool:
    """Whether a backend of `account_id` holds the key, without making the
    partitions' backends moto has not made yet."""
    backends = dict.get(iam_backends, account_id)
    return backends is not None and any(
        access_key in backend.access_keys for backend in dict.values(backends)
    )


_moto_get_account_id_from = iam_models.get_account_id_from


def get_account_id_from(access_key: str) -> str:
    account_id = _OWNER.get(access_key)
    if account_id is None:
        return DEFAULT_ACCOUNT_ID
    if _holds(account_id, access_key):
        return account_id
    return _moto_get_account_id_from(access_key)


_moto_iam_backend_init = IAMBackend.__init__


def _iam_backend_init(self, region_name, account_id):
    _moto_iam_backend_init(self, region_name, account_id)
    self.access_keys = _IndexedKeys(self.account_id, self.access_keys)


_moto_backend_dict_getitem = BackendDict.__getitem__


def _backend_dict_getitem(self, account_id):
    backends = dict.get(self, account_id)
    if backends is not None:
        return backends
    return _moto_backend_dict_getitem(self, account_id)


IAMBackend.__init__ = _iam_backend_init
# moto.core.responses imports it by name at each request.
iam_models.get_account_id_from = get_account_id_from
BackendDict.__getitem__ = _backend_dict_getitem
