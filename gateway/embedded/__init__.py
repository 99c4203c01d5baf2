"""Supervision of what embedded mode runs beside the gateway: the private redis-server child and the data-
directory lock.
"""
