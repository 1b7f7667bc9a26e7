"""The kernel layer: PF_KEY v2 messages and the backends that answer them.

``pfkey`` is the codec, ``sadb`` its numbers, ``base`` the socket interface and backend
selection, ``memory`` the simulated kernel and ``server`` the ``pyracoon-kernel`` program that
serves it on a Unix socket.
"""
