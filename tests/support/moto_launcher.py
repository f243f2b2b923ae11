"""Starts moto server for the test bed and the local run.

- binds 127.0.0.1 on the given port (0 = a free one) and prints one JSON
  line {"port": N} on stdout once it accepts connections;
- exits as soon as its stdin closes, so a test process that dies (or a
  shell script that exits) never leaves a server behind;
- loads the AWS managed policies (SecurityAudit, AWSSecurityHubReadOnlyAccess
  exist in moto only with MOTO_IAM_LOAD_MANAGED_POLICIES=true);
- answers cloudtrail:LookupEvents, which moto 5.2 does not implement (HTTP
  500), with an empty, read-only page of events. moto authorizes an action
  before it dispatches it, so IAM enforcement still applies to it.

Usage: python moto_launcher.py [PORT]
"""
import json
import os
import sys
import threading

os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto.cloudtrail.responses import CloudTrailResponse  # noqa: E402
from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402


def lookup_events(self: CloudTrailResponse) -> str:
    """cloudtrail:LookupEvents: no events recorded (moto records none)."""
    return json.dumps({"Events": []})


if not hasattr(CloudTrailResponse, "lookup_events"):
    CloudTrailResponse.lookup_events = lookup_events


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
