"""pyracoon: an IKEv1 daemon in the manner of KAME/ipsec-tools racoon."""

__version__ = "0.1.0"
