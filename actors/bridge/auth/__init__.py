"""The bridge's trust: who a CURVE key is, what it may do, and the audit trail of what was done.

Stores (users, API keys, the backend allow-list) live in ``<data-dir>/bridge/`` and are
written only by the bridge (and by ``runtime.bootstrap`` before it starts, through
``state.BridgeStores``). ``authority.Authority`` bundles them with the in-memory parts
(sessions, login throttle, rate-limited refusals) and the append-only audit log.
"""
