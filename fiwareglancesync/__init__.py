"""fiware-glancesync: keep OpenStack Glance images in step across the regions of a federation."""

__version__ = "2.0.0"
