"""The REST API (FastAPI, ``/api/v1``): ``ecap api`` serves :func:`web.api.app.create_app`.

``app`` builds the application; ``access`` holds the role→route matrix, the one place that
says who may call what; ``security`` authenticates (JWT, API keys); ``problems`` turns every
error into RFC 9457 problem details; ``state`` holds what the routes share (the asyncpg
pool, Redis, settings); ``routes/`` has one module per router. See docs/api.md.
"""
