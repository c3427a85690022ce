"""locker-kiosk: the on-site controller of one parcel-locker bank."""

__version__ = "0.1.0"
