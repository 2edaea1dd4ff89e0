"""Which account logs on to which guest, and when that changes (R-38).

Before promotion the DC takes .\\Administrator; after it the local SAM is gone and
<NETBIOS>\\Administrator logs on with the same password. A joined node takes both;
cluster cmdlets need the domain account (R-52).
"""

from __future__ import annotations

import threading
from typing import Any


class CredentialBook:
    def __init__(self, lab: Any, secrets: Any, make: Any) -> None:
        # `make(user, secret)` builds the credential object the remote layer sends.
        self.local_admin = make(".\\Administrator", secrets.admin)
        if lab.domain.mode == "new":
            # A new forest's Administrator keeps the password the DC had.
            self.domain_admin = make(f"{lab.domain.netbios}\\Administrator", secrets.admin)
        else:
            self.domain_admin = make(lab.domain.join_account, secrets.domain)
        self._domain: set[str] = set()
        self._lock = threading.Lock()

    def current(self, vm: str) -> Any:
        with self._lock:
            return self.domain_admin if vm in self._domain else self.local_admin

    def use_domain(self, vm: str) -> None:
        with self._lock:
            self._domain.add(vm)

    def other(self, vm: str) -> Any:
        """The account that is not the current one for this VM."""
        with self._lock:
            return self.local_admin if vm in self._domain else self.domain_admin

    def remember(self, vm: str, credential: Any) -> None:
        """Keep using `credential` for this VM: it logged on when the other did not."""
        with self._lock:
            if credential is self.domain_admin:
                self._domain.add(vm)
            else:
                self._domain.discard(vm)
