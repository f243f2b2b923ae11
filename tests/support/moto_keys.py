"""The account of a request's access key, for moto 5.2.1, imported by
moto_launcher.py.

moto finds the account of a request that does not name one
(x-moto-account-id) from its access key: get_account_id_from walks every
account's IAM backend in every partition until one holds the key, for every
such request (the test bed's assumed roles, an IAM user's keys, the portal
emulator's tests of a member's key). Its cost grows with the accounts moto
knows: with 1,000 accounts it held moto's one Python lock about half the
time (py-spy, the hub benchmark's stack set), and every request waited on
it, so a member's Create got slower with the size of the organization. AWS
finds a key's account directly, whatever the number of accounts.

Here every IAMBackend (each account and partition, created lazily by moto,
and again at each reset) keeps its access_keys in a dict that also records,
in one index, the account of each key it stores. get_account_id_from looks
the key up there, and trusts the account only if one of that account's
backends still holds the key (a reset or a deletion leaves nothing stale
behind). A key the index does not name takes moto's walk, which returns
the default account as before. The answer is moto's in every case; only
its cost changes.
"""
import moto.iam.models as iam_models
from moto.iam.models import IAMBackend, iam_backends

# access key id -> the account whose backend stored it last.
_OWNER: dict = {}


class _IndexedKeys(dict):
    """An IAMBackend's access_keys: each key stored is indexed by account."""

    def __init__(self, account_id: str, items=()):
        super().__init__(items)
        self._account = account_id
        for key in self:
            _OWNER[key] = account_id

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        _OWNER[key] = self._account

    def __delitem__(self, key):
        super().__delitem__(key)
        if _OWNER.get(key) == self._account:
            del _OWNER[key]

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
    if account_id is not None and _holds(account_id, access_key):
        return account_id
    return _moto_get_account_id_from(access_key)


_moto_backend_init = IAMBackend.__init__


def _backend_init(self, region_name, account_id):
    _moto_backend_init(self, region_name, account_id)
    self.access_keys = _IndexedKeys(self.account_id, self.access_keys)


IAMBackend.__init__ = _backend_init
# moto.core.responses imports it by name at each request.
iam_models.get_account_id_from = get_account_id_from
