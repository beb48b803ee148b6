"""Ferry's agent on a hypervisor: the host side, which runs without Ferry's database or secrets.

It reads its work from the broker (queue ``host.<id>``), does it on libvirt through ``virt``, and
reads and writes Ferry's state only through the agent API (docs/agent-api.md).
"""

from ferry_common import __version__

__all__ = ["__version__"]
