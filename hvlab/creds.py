"""Which account logs on to which guest, and when that changes (R-38).

Before promotion the DC takes .\\Administrator; after it the local SAM is gone and
<NETBIOS>\\Administrator logs on with the same password. A joined node takes both;
cluster cmdlets need the domain account (R-52).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any


class CredentialBook:
    def __init__(
        self,
        lab: Any,
        secrets: Any,
        make: Any,
        *,
        domain: Iterable[str] = (),
        on_change: Callable[[list[str]], None] | None = None,
    ) -> None:
        """`domain`: the VMs whose domain account logged on last time (a hint that saves
        a refused logon; the guest decides, and as_whoever_logs_on corrects a wrong
        guess). `on_change` hears the VMs that take the domain account when that changes."""
        # `make(user, secret)` builds the credential object the remote layer sends.
        self.local_admin = make(".\\Administrator", secrets.admin)
        if lab.domain.mode == "new":
            # A new forest's Administrator keeps the password the DC had.
            self.domain_admin = make(f"{lab.domain.netbios}\\Administrator", secrets.admin)
        else:
            self.domain_admin = make(lab.domain.join_account, secrets.domain)
        names = {vm.name for vm in lab.vms}
        self._prefix = lab.vm_prefix
        self._domain: set[str] = {vm for vm in domain if vm in names}
        self._lock = threading.Lock()
        self._on_change = on_change

    def on_host(self, vm: str) -> str:
        """The name PowerShell Direct's -VMName takes for the guest `vm`: its name on
        the host (the lab's vm_prefix first, R-145), whatever case the name came in
        (cluster cmdlets write node names in capitals)."""
        return self._prefix + vm

    def current(self, vm: str) -> Any:
        with self._lock:
            return self.domain_admin if vm in self._domain else self.local_admin

    def use_domain(self, vm: str) -> None:
        with self._lock:
            self._update(self._domain | {vm})

    def other(self, vm: str) -> Any:
        """The account that is not the current one for this VM."""
        with self._lock:
            return self.local_admin if vm in self._domain else self.domain_admin

    def remember(self, vm: str, credential: Any) -> None:
        """Keep using `credential` for this VM: it logged on when the other did not."""
        with self._lock:
            if credential is self.domain_admin:
                self._update(self._domain | {vm})
            else:
                self._update(self._domain - {vm})

    def _update(self, domain: set[str]) -> None:
        if domain == self._domain:
            return
        self._domain = domain
        if self._on_change is not None:
            self._on_change(sorted(domain))
