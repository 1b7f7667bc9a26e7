"""The daemon: pyracoon on the network and the kernel (asyncio edge around the engine)."""
