"""Wire protocol of the backup console: pure data, no sockets, no threads.

Importing this package (or any module in it) must never import zmq; a test checks it.
"""

PROTOCOL_VERSION = 1
