"""The TCR-compatible API: the product's replication actions on Ferry's rules and tasks.

``gateway.handle`` answers one signed call; ``replication`` and ``records``
hold the actions, ``params`` reads their parameters. The protocol itself is
``common.security.tc3``, the mapping of words ``common.domain.tcr``.
"""

from common.services.tcr.gateway import ACTIONS, Call, handle

__all__ = ["ACTIONS", "Call", "handle"]
