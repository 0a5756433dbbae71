"""Observability shared by every process: Prometheus metrics and structured logs.

Foundation layer: imports only the standard library and prometheus-client.
"""
