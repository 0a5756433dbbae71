"""Request and response schemas of the management API, one module per resource."""
