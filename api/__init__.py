"""The HTTP service: JWT verification, routes, problem+json errors and the command line."""
