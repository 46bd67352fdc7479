"""Starting or joining Ray for a batch, on the loopback interface when it is local.

Without an address (and without ``RAY_ADDRESS``) :func:`start` starts a private Ray on this machine
(``address="local"``: never an existing cluster), as many CPUs as the machine has, no dashboard, an object
store capped at :func:`object_store_bytes`, usage statistics off. Every process of it binds to and talks on
127.0.0.1 only: Ray (2.60) turns a node IP of 127.0.0.1 into the machine's routable address unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (its single-machine mode, in which the node IP, the gRPC servers and
the agents stay on the loopback interface), so :func:`prepare_environment` sets that before ray is imported.
A private Ray gets a random authentication token in its environment (nothing written to ``~/.ray``).

With an address Ray joins that cluster; a loopback address (127.x, localhost) keeps the single-machine mode
too, so that a test cluster on 127.0.0.1 stays there; any other address is Ray's usual multi-machine setup.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
OBJECT_STORE_MIN, OBJECT_STORE_MAX = 256 * 2**20, 4 * 2**30


@dataclass
class RayInfo:
    """The Ray a batch runs on. ``embedded``: started by this process (and stopped by :func:`stop`)."""

    address: str
    embedded: bool
    nodes: list[dict]
    cpus: float
    largest_node_cpus: float


def is_loopback(address: str | None) -> bool:
    """Whether a Ray address (``host:port``, ``ray://host:port``) names this machine's loopback interface."""
    if not address:
        return True
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def resolve_address(option: str | None) -> str | None:
    """``--ray-address``, else ``RAY_ADDRESS``, else None (embedded)."""
    return option or os.environ.get("RAY_ADDRESS") or None


def prepare_environment(address: str | None) -> None:
    """Environment Ray reads when it is imported and that its processes inherit: no usage statistics, and for a
    local Ray (embedded or a loopback address) the loopback-only single-machine mode and, embedded, a token."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if is_loopback(address):
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if address is None and not os.environ.get("RAY_AUTH_TOKEN"):
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


def object_store_bytes(total_memory: int | None = None) -> int:
    """The embedded Ray's object store: a fifth of the memory, between 256 MiB and 4 GiB (it holds the scenes and
    datasets in flight and the results not yet written, a few at a time)."""
    if total_memory is None:
        try:
            total_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total_memory = 4 * 2**30
    return int(min(OBJECT_STORE_MAX, max(OBJECT_STORE_MIN, total_memory // 5)))


def embedded_init_kwargs(cpus: int | None = None, verbose: bool = False) -> dict:
    """``ray.init`` arguments of the private local Ray."""
    return {"address": "local", "num_cpus": cpus or os.cpu_count() or 1, "include_dashboard": False,
            "_node_ip_address": LOOPBACK, "object_store_memory": object_store_bytes(),
            "log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.WARNING,
            "configure_logging": True}


def start(address: str | None, verbose: bool = False) -> RayInfo:
    """Start the private Ray (``address`` None) or join the cluster at ``address``."""
    prepare_environment(address)
    import ray

    if address is None:
        ray.init(**embedded_init_kwargs(verbose=verbose))
    else:
        ray.init(address=address, log_to_driver=verbose, logging_level=logging.INFO if verbose else logging.WARNING)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = float(ray.cluster_resources().get("CPU", 0))
    largest = max((float(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=0.0)
    info = RayInfo(address or "embedded", address is None, nodes, cpus, largest)
    log.info("ray: %s, %d node(s), %g CPUs", "a private local Ray" if address is None else f"cluster {address}",
             len(nodes), cpus)
    return info


def stop() -> None:
    """Disconnect (and stop the private Ray this process started); nothing when ray was never imported."""
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
